"""Completion (``textDocument/completion``): what may be typed at the cursor.

Which list the user gets depends on where the cursor is (:mod:`lsp.context`):

* at the start of a statement: the statement functions (``df.start``, ``df.setvar``,
  ``df.explain``) and the node functions, since a bare expression is a workflow too;
* inside an expression: the node functions with snippet arguments and catalogue docs, and the
  operators;
* after ``$`` (in SQL, URLs, bodies): the result names bound earlier on the path to the cursor;
  after ``$name.``: the columns that result has, inferred from its SQL or from the envelope of
  sleep/signal/HTTP steps;
* after ``{``: the variables the file declares and the system variables;
* elsewhere in SQL: SQL keywords and, with a database configured, its tables and columns;
* in a result-name argument (``df.if_rows('…``): the names in scope.

The function is pure: it reads the cached document state and returns items.
"""

from __future__ import annotations

import re

from lsprotocol import types as lsp

from compiler import ir
from compiler.catalogue import Function
from compiler.catalogue import load as load_catalogue
from compiler.checker.results import result_shape
from lsp.context import (
    StringContext,
    at_statement_start,
    call_at,
    in_comment,
    repaired_workflow,
    string_at,
)
from lsp.names import Binding, scope_at, unique_names
from lsp.schema import Schema
from lsp.state import DocumentState

TRIGGER_CHARACTERS = ["$", ".", "{"]

_NAME_PREFIX = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\Z")
_COLUMN_PREFIX = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)?\Z")
_VAR_PREFIX = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)?\Z")
_DF_PREFIX = re.compile(r"df\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)?\Z", re.IGNORECASE)
_WORD_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TABLE_DOT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)?\Z")
_FROM_TABLES = re.compile(
    r"\b(?:FROM|JOIN|UPDATE|INTO)\s+((?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*)",
    re.IGNORECASE,
)

SQL_KEYWORDS = (
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "EXISTS",
    "AS",
    "INSERT",
    "INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "DELETE",
    "RETURNING",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "ON",
    "USING",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "DISTINCT",
    "UNION",
    "ALL",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "WITH",
    "COALESCE",
    "COUNT",
    "NOW()",
    "CREATE TABLE",
    "ALTER TABLE",
    "DROP TABLE",
    "TRUNCATE",
    "ON CONFLICT",
    "DO NOTHING",
    "DO UPDATE",
    "FOR UPDATE",
    "SKIP LOCKED",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "TRUE",
    "FALSE",
    "CAST",
    "jsonb_build_object",
    "pg_sleep",
)


def result_columns(node: ir.Node, schema: Schema | None = None) -> tuple[str, ...] | None:
    """The fields ``$name.<field>`` can name for the result of ``node``, when knowable.

    The checker's own result shapes decide (the same inference that reports DFC304); a
    ``SELECT *`` from a table the configured database knows takes that table's columns.
    """
    shape = result_shape(node, load_catalogue())
    if shape.known_fields:
        return shape.fields
    if isinstance(node, ir.Sql) and schema is not None:
        match = _FROM_TABLES.search(node.sql.value)
        table = schema.table(match.group(1)) if match else None
        if table is not None:
            return tuple(c.name for c in table.columns)
    return None


def function_doc(function: Function) -> str:
    lines = [f"```sql\n{function.signature()}\n```", function.doc]
    if function.extension:
        lines.append("*dfc extension: not available in pg_durable.*")
    if function.params:
        lines.append("\n".join(f"- `{p.name}` ({p.type}): {p.doc}" for p in function.params))
    return "\n\n".join(line for line in lines if line)


def _snippet(function: Function, snippets: bool) -> tuple[str, lsp.InsertTextFormat]:
    if not snippets:
        return f"{function.name}(", lsp.InsertTextFormat.PlainText
    parts = []
    for index, param in enumerate(p for p in function.params if p.required):
        placeholder = param.name
        if param.type in ("text", "sql", "name"):
            placeholder = f"'${{{index + 1}:{param.name}}}'"
        else:
            placeholder = f"${{{index + 1}:{param.name}}}"
        parts.append(placeholder)
    return f"{function.name}({', '.join(parts)})$0", lsp.InsertTextFormat.Snippet


def _function_items(
    categories: tuple[str, ...], replace: lsp.Range, qualified: bool, snippets: bool
) -> list[lsp.CompletionItem]:
    items = []
    for function in load_catalogue().functions.values():
        if function.category not in categories:
            continue
        text, fmt = _snippet(function, snippets)
        label = function.qualified_name if qualified else function.name
        items.append(
            lsp.CompletionItem(
                label=label,
                kind=lsp.CompletionItemKind.Function,
                detail=function.signature(),
                documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, function_doc(function)),
                filter_text=label,
                sort_text=("0" if function.category == "statement" else "1") + function.name,
                text_edit=lsp.TextEdit(replace, ("df." if qualified else "") + text),
                insert_text_format=fmt,
            )
        )
    return items


def _operator_items() -> list[lsp.CompletionItem]:
    return [
        lsp.CompletionItem(
            label=op.token,
            kind=lsp.CompletionItemKind.Operator,
            detail=op.name,
            documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, op.doc),
            sort_text="2" + op.token,
        )
        for op in load_catalogue().operators
    ]


def _binding_detail(binding: Binding, schema: Schema | None) -> str:
    columns = result_columns(binding.node, schema)
    shape = f" → {', '.join(columns)}" if columns else ""
    return f"{binding.node.kind} result{shape}"


def _name_items(
    bindings: list[Binding], replace: lsp.Range, schema: Schema | None
) -> list[lsp.CompletionItem]:
    return [
        lsp.CompletionItem(
            label=f"${b.name}",
            kind=lsp.CompletionItemKind.Variable,
            detail=_binding_detail(b, schema),
            filter_text=b.name,
            sort_text="0" + b.name,
            text_edit=lsp.TextEdit(replace, b.name),
        )
        for b in unique_names(bindings)
    ]


def _bindings_at(state: DocumentState, offset: int) -> list[Binding]:
    placed = state.analysis.statement_at(offset)
    if placed is None:
        return []
    analysis = placed.analysis
    local = placed.to_local(offset)
    statement = analysis.statement
    if isinstance(statement, ir.Workflow) and statement.span.start <= local <= statement.span.end:
        return scope_at(statement, local, analysis.source.text)
    chunk_offset = offset - placed.start
    workflow = repaired_workflow(analysis.text, chunk_offset)
    if workflow is None:
        return []
    return scope_at(workflow, chunk_offset, analysis.text[:chunk_offset] + " " * 4)


def _variable_items(
    state: DocumentState, replace: lsp.Range, close: bool
) -> list[lsp.CompletionItem]:
    items = []
    suffix = "" if not close else "}"
    for name, (_, setvar) in sorted(state.analysis.variables.items()):
        items.append(
            lsp.CompletionItem(
                label=f"{{{name}}}",
                kind=lsp.CompletionItemKind.Constant,
                detail=f"= {setvar.value.value!r}",
                filter_text=name,
                sort_text="0" + name,
                text_edit=lsp.TextEdit(replace, name + suffix),
            )
        )
    for var in load_catalogue().system_variables:
        items.append(
            lsp.CompletionItem(
                label=f"{{{var.name}}}",
                kind=lsp.CompletionItemKind.Constant,
                detail="system variable",
                documentation=var.doc,
                filter_text=var.name,
                sort_text="1" + var.name,
                text_edit=lsp.TextEdit(replace, var.name + suffix),
            )
        )
    return items


def _sql_items(
    sql_before: str, sql_all: str, replace: lsp.Range, schema: Schema | None
) -> list[lsp.CompletionItem]:
    dotted = _TABLE_DOT.search(sql_before)
    if dotted is not None and schema is not None:
        table = schema.table(dotted.group(1))
        if table is not None:
            return [
                lsp.CompletionItem(
                    label=c.name,
                    kind=lsp.CompletionItemKind.Field,
                    detail=f"{table.qualified}.{c.name} {c.data_type}",
                    text_edit=lsp.TextEdit(replace, c.name),
                )
                for c in table.columns
            ]
    items = [
        lsp.CompletionItem(
            label=keyword,
            kind=lsp.CompletionItemKind.Keyword,
            sort_text="3" + keyword,
            text_edit=lsp.TextEdit(replace, keyword),
        )
        for keyword in SQL_KEYWORDS
    ]
    if schema is not None:
        mentioned = {m.group(1).lower() for m in _FROM_TABLES.finditer(sql_all)}
        for table in schema.tables:
            label = table.name if table.schema == "public" else table.qualified
            items.append(
                lsp.CompletionItem(
                    label=label,
                    kind=lsp.CompletionItemKind.Class,
                    detail=f"table {table.qualified}",
                    documentation=", ".join(f"{c.name} {c.data_type}" for c in table.columns),
                    sort_text="1" + label,
                    text_edit=lsp.TextEdit(replace, label),
                )
            )
            if table.name.lower() in mentioned or table.qualified.lower() in mentioned:
                for column in table.columns:
                    items.append(
                        lsp.CompletionItem(
                            label=column.name,
                            kind=lsp.CompletionItemKind.Field,
                            detail=f"{table.qualified}.{column.name} {column.data_type}",
                            sort_text="0" + column.name,
                            text_edit=lsp.TextEdit(replace, column.name),
                        )
                    )
    return items


def complete(
    state: DocumentState,
    position: lsp.Position,
    *,
    schema: Schema | None = None,
    snippets: bool = True,
) -> lsp.CompletionList:
    """The completion list at ``position``."""
    lines = state.lines
    offset = lines.offset(position)
    placed = state.analysis.statement_at(offset)
    empty = lsp.CompletionList(is_incomplete=False, items=[])
    if placed is None:
        return empty
    chunk = placed.analysis.text
    local = offset - placed.start
    if in_comment(chunk, local):
        return empty
    string = string_at(chunk, local)
    if string is not None:
        return lsp.CompletionList(
            is_incomplete=False,
            items=_in_string(state, offset, chunk, local, string, schema),
        )
    before = chunk[:local]
    df_prefix = _DF_PREFIX.search(before)
    word = _WORD_PREFIX.search(before)
    start = offset - (len(df_prefix.group(0)) if df_prefix else len(word.group(0)) if word else 0)
    replace = lines.range(start, offset)
    if at_statement_start(chunk, local):
        categories: tuple[str, ...] = ("statement", "node")
    else:
        categories = ("node",)
    items = _function_items(categories, replace, True, snippets)
    if df_prefix is None and not at_statement_start(chunk, local):
        items.extend(_operator_items())
        call = call_at(chunk, local)
        if call is not None and call.function is not None and call.named is None:
            for param in call.function.params[call.arg_index :]:
                items.append(
                    lsp.CompletionItem(
                        label=f"{param.name} =>",
                        kind=lsp.CompletionItemKind.Property,
                        detail=param.signature(),
                        documentation=param.doc,
                        sort_text="4" + param.name,
                        text_edit=lsp.TextEdit(replace, f"{param.name} => "),
                    )
                )
    return lsp.CompletionList(is_incomplete=False, items=items)


def _in_string(
    state: DocumentState,
    offset: int,
    chunk: str,
    local: int,
    string: StringContext,
    schema: Schema | None,
) -> list[lsp.CompletionItem]:
    lines = state.lines
    body_start, role = string.body_start, string.role
    lexeme = string.lexeme
    string_end = lexeme.end - (len(lexeme.closer) if lexeme.closed else 0)
    inside = chunk[body_start:local]
    if role == "name":
        word = _WORD_PREFIX.search(inside)
        replace = lines.range(offset - (len(word.group(0)) if word else 0), offset)
        call = call_at(chunk, local)
        if call is not None and call.name == "if_rows":
            # Names in scope where the call starts: its own argument need not parse yet.
            call_start = chunk.rfind("df", 0, call.name_start)
            at = offset - local + (call_start if call_start >= 0 else call.name_start)
            return _name_items(_bindings_at(state, at), replace, schema)
        return []
    if role in ("cron", "label"):
        return []
    column = _COLUMN_PREFIX.search(inside)
    if column is not None:
        replace = lines.range(offset - len(column.group(2) or ""), offset)
        wanted = column.group(1)
        bindings = [b for b in _bindings_at(state, offset) if b.name == wanted]
        if not bindings:
            return []
        columns = result_columns(bindings[-1].node, schema) or ()
        return [
            lsp.CompletionItem(
                label=name,
                kind=lsp.CompletionItemKind.Field,
                detail=f"${wanted}.{name}",
                text_edit=lsp.TextEdit(replace, name),
            )
            for name in columns
        ]
    name = _NAME_PREFIX.search(inside)
    if name is not None:
        replace = lines.range(offset - len(name.group(1) or ""), offset)
        return _name_items(_bindings_at(state, offset), replace, schema)
    var = _VAR_PREFIX.search(inside)
    if var is not None:
        replace = lines.range(offset - len(var.group(1) or ""), offset)
        closed = chunk[local : local + 1] == "}"
        return _variable_items(state, replace, not closed)
    if role == "sql":
        word = _WORD_PREFIX.search(inside)
        replace = lines.range(offset - (len(word.group(0)) if word else 0), offset)
        return _sql_items(inside, chunk[body_start:string_end], replace, schema)
    return []
