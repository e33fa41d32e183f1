"""Names in a statement: where each ``$name`` and ``{var}`` is bound, declared and used.

Navigation (definition, references, rename), hover, semantic tokens and completion all need
the same facts: the places a result name is bound (``|=> 'name'``, ``df.as``) and used
(``$name`` in SQL and HTTP texts, ``df.if_rows('name', …)``), and the places a variable is
declared (``df.setvar('var', …)``) and used (``{var}``). :func:`occurrences` computes them once
per statement analysis, at offsets of the analysed input, from the IR and the compiler's own
reference scanner (:mod:`compiler.refs`), so the server finds exactly the references the
runtime substitutes. :func:`scope_at` answers which names are bound earlier on the path to a
position: names bound later, or in a sibling JOIN/RACE branch or the other IF branch, are not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from compiler import ir
from compiler.refs import scan_sql, scan_text
from lsp.analysis import StatementAnalysis

Kind = Literal["bind", "ref", "var_decl", "var_ref"]


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One place a name is written; ``start``/``end`` cover the name only (no ``$``/quotes)."""

    kind: Kind
    name: str
    start: int
    end: int
    node: ir.Node | None = None  # bind: the step whose result is named
    column: str | None = None  # ref: `$name.column`
    column_start: int = -1
    in_sql: bool = False

    @property
    def is_variable(self) -> bool:
        return self.kind in ("var_decl", "var_ref")


def _name_range(text: str, span_start: int, span_end: int, name: str) -> tuple[int, int]:
    """Where ``name`` is written inside a literal spanning ``[span_start, span_end)``."""
    index = text.find(name, span_start, span_end)
    if index < 0:
        return span_start, span_end
    return index, index + len(name)


def _texts(node: ir.Node) -> Iterator[tuple[ir.Text, bool]]:
    """The texts of a step that references are substituted into, and whether each is SQL."""
    if isinstance(node, ir.Sql):
        yield node.sql, True
    elif isinstance(node, ir.Http | ir.HttpMultipart):
        yield node.url, False
        if isinstance(node, ir.Http) and node.body is not None:
            yield node.body, False
    elif isinstance(node, ir.Break) and node.value is not None:
        yield node.value, False


def _text_occurrences(text: ir.Text, is_sql: bool, out: list[Occurrence]) -> None:
    scan = scan_sql(text.value) if is_sql else scan_text(text.value)
    for ref in scan.refs:
        start = text.file_offset(ref.start + 1)
        end = start + len(ref.name)
        column_start = -1
        if ref.column is not None:
            column_start = text.file_offset(ref.start + 2 + len(ref.name))
        out.append(
            Occurrence(
                "ref",
                ref.name,
                start,
                end,
                column=ref.column,
                column_start=column_start,
                in_sql=is_sql,
            )
        )
    for var in scan.variables:
        start = text.file_offset(var.start + 1)
        out.append(Occurrence("var_ref", var.name, start, start + len(var.name), in_sql=is_sql))


def occurrences(analysis: StatementAnalysis) -> tuple[Occurrence, ...]:
    """Every name occurrence of the statement, in source order (cached on the analysis)."""
    cached = analysis.derived.get("occurrences")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    text = analysis.source.text
    out: list[Occurrence] = []
    statement = analysis.statement
    if isinstance(statement, ir.SetVar):
        start, end = _name_range(
            text, statement.name.span.start, statement.name.span.end, statement.name.value
        )
        out.append(Occurrence("var_decl", statement.name.value, start, end))
    elif isinstance(statement, ir.Workflow):
        for node in statement.body.walk():
            if node.bind is not None:
                start, end = _name_range(
                    text, node.bind.span.start, node.bind.span.end, node.bind.value
                )
                out.append(Occurrence("bind", node.bind.value, start, end, node=node))
            if isinstance(node, ir.IfRows):
                name = node.result_name
                start, end = _name_range(text, name.span.start, name.span.end, name.value)
                out.append(Occurrence("ref", name.value, start, end))
            for body, is_sql in _texts(node):
                _text_occurrences(body, is_sql, out)
    out.sort(key=lambda o: (o.start, o.end))
    result = tuple(out)
    analysis.derived["occurrences"] = result
    return result


def occurrence_at(analysis: StatementAnalysis, offset: int) -> Occurrence | None:
    """The occurrence whose name contains ``offset`` (or ends right at it)."""
    for occurrence in occurrences(analysis):
        if occurrence.start <= offset <= occurrence.end:
            return occurrence
        if occurrence.kind == "ref" and occurrence.start - 1 == offset:
            return occurrence  # on the `$`
    return None


# ---------------------------------------------------------------------------------------------
# Scope
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Binding:
    name: str
    node: ir.Node
    start: int  # where the name is written
    end: int


def bindings_in(node: ir.Node, text: str) -> list[Binding]:
    """Every name bound inside ``node`` (``node``'s own binding included)."""
    found: list[Binding] = []
    for inner in node.walk():
        if inner.bind is not None:
            start, end = _name_range(
                text, inner.bind.span.start, inner.bind.span.end, inner.bind.value
            )
            found.append(Binding(inner.bind.value, inner, start, end))
    return found


def _contains(node: ir.Node, offset: int) -> bool:
    return node.span.start <= offset <= node.span.end


def scope_at(workflow: ir.Workflow, offset: int, text: str) -> list[Binding]:
    """Names bound before ``offset`` on the path that leads to it (innermost last)."""
    visible: list[Binding] = []
    node: ir.Node | None = workflow.body
    while node is not None and _contains(node, offset):
        after_self = node.bind is not None and node.bind.span.start <= offset
        if after_self:
            # The cursor is in the `|=> 'name'` of this step, after the step itself.
            visible.extend(bindings_in(node, text))
            break
        node = _descend(node, offset, text, visible)
    return visible


def _branch(offset: int, *candidates: ir.Node | None) -> ir.Node | None:
    for candidate in candidates:
        if candidate is not None and _contains(candidate, offset):
            return candidate
    return None


def _descend(node: ir.Node, offset: int, text: str, visible: list[Binding]) -> ir.Node | None:
    """The child of ``node`` containing ``offset``; adds to ``visible`` what it can see."""
    if isinstance(node, ir.Seq):
        for step in node.steps:
            if _contains(step, offset):
                return step
            if step.span.end <= offset:
                visible.extend(bindings_in(step, text))
        return None
    if isinstance(node, ir.Join | ir.Race):
        return _branch(offset, *node.branches)
    if isinstance(node, ir.If):
        if _contains(node.condition, offset):
            return node.condition
        visible.extend(bindings_in(node.condition, text))
        return _branch(offset, node.then, node.otherwise)
    if isinstance(node, ir.IfRows):
        return _branch(offset, node.then, node.otherwise)
    if isinstance(node, ir.Loop):
        if _contains(node.body, offset):
            return node.body
        visible.extend(bindings_in(node.body, text))
        if node.condition is not None and _contains(node.condition, offset):
            return node.condition
        return None
    if isinstance(node, ir.Undo):
        if _contains(node.body, offset):
            return node.body
        visible.extend(bindings_in(node.body, text))
        return node.undo if _contains(node.undo, offset) else None
    if isinstance(node, ir.Retry | ir.Timeout) and _contains(node.body, offset):
        return node.body
    return None


def unique_names(bindings: list[Binding]) -> list[Binding]:
    """One binding per name, the latest (innermost) one winning."""
    by_name: dict[str, Binding] = {}
    for binding in bindings:
        by_name[binding.name] = binding
    return list(by_name.values())
