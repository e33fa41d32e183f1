"""Hover (``textDocument/hover``): what the thing under the cursor is.

* a ``df.*`` function: its signature and catalogue doc; a named argument: the parameter's doc;
* an operator: the catalogue's doc for it;
* ``$name``: where it is bound, by what kind of step, and the result's known fields;
* ``{var}``: its declared default value (or that it is a system variable, or undeclared);
* a cron string of ``df.wait_for_schedule``: the schedule in words and the next three times.
"""

from __future__ import annotations

from lark import Token
from lsprotocol import types as lsp

from compiler import ir
from compiler.catalogue import load as load_catalogue
from lsp.analysis import Placed
from lsp.completion import function_doc, result_columns
from lsp.cron import describe, next_times
from lsp.names import occurrence_at
from lsp.navigation import bindings_of
from lsp.schema import Schema
from lsp.state import DocumentState


def token_at(placed: Placed, local: int) -> tuple[int, Token] | None:
    """The significant token of the statement containing analysis offset ``local``."""
    tokens = placed.analysis.tokens
    lo, hi = 0, len(tokens)
    while lo < hi:
        mid = (lo + hi) // 2
        if (tokens[mid].end_pos or 0) < local:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(tokens) and (tokens[lo].start_pos or 0) <= local <= (tokens[lo].end_pos or 0):
        return lo, tokens[lo]
    return None


def _markdown(value: str, lines_range: lsp.Range | None) -> lsp.Hover:
    return lsp.Hover(contents=lsp.MarkupContent(lsp.MarkupKind.Markdown, value), range=lines_range)


def _snippet(text: str, limit: int = 120) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _describe_binding(node: ir.Node, line: int, schema: Schema | None) -> str:
    what = f"a `{node.kind}` step"
    if isinstance(node, ir.Sql):
        what = f"`{_snippet(node.sql.value)}`"
    columns = result_columns(node, schema)
    text = f"bound on line {line} to {what}"
    if columns:
        text += "\n\nfields: " + ", ".join(f"`{c}`" for c in columns)
    elif isinstance(node, ir.Join):
        text += "\n\nresult: a JSON array of the branch results"
    return text


def hover(
    state: DocumentState, position: lsp.Position, schema: Schema | None = None
) -> lsp.Hover | None:
    lines = state.lines
    offset = lines.offset(position)
    placed = state.analysis.statement_at(offset)
    if placed is None:
        return None
    local = placed.to_local(offset)
    occurrence = occurrence_at(placed.analysis, local)
    if occurrence is not None:
        span = lines.range(placed.to_doc(occurrence.start), placed.to_doc(occurrence.end))
        if occurrence.is_variable:
            return _markdown(_variable_text(state, occurrence.name), span)
        parts = [f"**${occurrence.name}**"]
        for where, binding in bindings_of(placed, occurrence.name):
            line = lines.position(where.to_doc(binding.start)).line + 1
            if binding.node is not None:
                parts.append(_describe_binding(binding.node, line, schema))
        if len(parts) == 1:
            parts.append("not bound in this workflow")
        return _markdown("\n\n".join(parts), span)
    cron = _cron_at(placed, local)
    if cron is not None:
        text, cron_text = cron
        return _markdown(
            text,
            lines.range(placed.to_doc(cron_text.span.start), placed.to_doc(cron_text.span.end)),
        )
    found = token_at(placed, local)
    if found is None:
        return None
    index, token = found
    span = lines.range(placed.to_doc(token.start_pos or 0), placed.to_doc(token.end_pos or 0))
    catalogue = load_catalogue()
    tokens = placed.analysis.tokens
    value = str(token)
    if token.type == "IDENT":
        previous = [str(t) for t in tokens[max(0, index - 2) : index]]
        if previous == ["df", "."] or (
            len(previous) == 2 and previous[0].lower() == "df" and previous[1] == "."
        ):
            function = catalogue.get(value.lower())
            if function is not None:
                return _markdown(function_doc(function), span)
            return None
        following = str(tokens[index + 1]) if index + 1 < len(tokens) else ""
        if following in ("=>", ":="):
            function_name = _enclosing_function(tokens, index)
            function = catalogue.get(function_name) if function_name else None
            param = function.param(value.lower()) if function else None
            if param is not None:
                return _markdown(f"```sql\n{param.signature()}\n```\n\n{param.doc}", span)
        return None
    for operator in catalogue.operators:
        if operator.token == value:
            return _markdown(f"**`{operator.token}`** {operator.name}\n\n{operator.doc}", span)
    return None


def _enclosing_function(tokens: tuple[Token, ...], index: int) -> str | None:
    depth = 0
    for position in range(index - 1, -1, -1):
        text = str(tokens[position])
        if text == ")":
            depth += 1
        elif text == "(":
            if depth == 0:
                if position >= 1 and tokens[position - 1].type == "IDENT":
                    return str(tokens[position - 1]).lower()
                return None
            depth -= 1
    return None


def _variable_text(state: DocumentState, name: str) -> str:
    declared = state.analysis.variables.get(name)
    if declared is not None:
        placed, setvar = declared
        line = state.lines.position(placed.to_doc(setvar.span.start)).line + 1
        return f"**{{{name}}}** = `{setvar.value.value}`\n\ndeclared on line {line} with df.setvar"
    for var in load_catalogue().system_variables:
        if var.name == name:
            return f"**{{{name}}}** (system variable)\n\n{var.doc}"
    return f"**{{{name}}}** is not declared in this file; declare it with `SELECT df.setvar('{name}', '…')`"


def _cron_at(placed: Placed, local: int) -> tuple[str, ir.Text] | None:
    statement = placed.analysis.statement
    if not isinstance(statement, ir.Workflow):
        return None
    for node in statement.body.walk():
        if (
            isinstance(node, ir.WaitSchedule)
            and node.cron.span.start <= local <= node.cron.span.end
        ):
            expression = node.cron.value
            zone = node.time_zone.value if node.time_zone is not None else None
            try:
                words = describe(expression)
                times = next_times(expression, zone)
            except (ValueError, KeyError) as error:
                return f"cron `{expression}`: {error}", node.cron
            when = "\n".join(f"- {t.strftime('%a %Y-%m-%d %H:%M %Z')}" for t in times)
            return f"**{words}** ({zone or 'UTC'})\n\nnext:\n{when}", node.cron
    return None
