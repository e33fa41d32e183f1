"""A plain-JSON view of the IR, for ``dfc parse --format json`` and snapshot tests.

Each node becomes ``{"kind": ..., <fields>, "span": "line:col-line:col"}``; text values are
shown decoded. The view is for people and tests; plans (:mod:`compiler.emit`) are the
machine format.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from compiler import ir
from compiler.source import Span


def span_text(span: Span) -> str:
    return f"{span.line}:{span.column}-{span.end_line}:{span.end_column}"


def dump_value(value: Any) -> Any:
    if isinstance(value, ir.Node):
        return dump_node(value)
    if isinstance(value, ir.Text):
        return value.value
    if isinstance(value, ir.Name):
        return value.value
    if isinstance(value, ir.Json):
        return value.value
    if isinstance(value, Span):
        return span_text(value)
    if isinstance(value, tuple):
        return [dump_value(v) for v in value]
    return value


def dump_node(node: ir.Node) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": node.kind}
    for f in fields(node):
        if f.name in ("span", "bind") or f.name.endswith("_span"):
            continue
        out[f.name] = dump_value(getattr(node, f.name))
    if node.bind is not None:
        out["bind"] = node.bind.value
    out["span"] = span_text(node.span)
    return out


def dump_program(program: ir.Program) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for statement in program.statements:
        if isinstance(statement, ir.SetVar):
            out.append(
                {
                    "statement": "setvar",
                    "name": statement.name.value,
                    "value": statement.value.value,
                    "span": span_text(statement.span),
                }
            )
            continue
        entry: dict[str, Any] = {
            "statement": "workflow",
            "name": statement.name,
            "form": statement.form,
        }
        if statement.label is not None:
            entry["label"] = statement.label.value
        if statement.database is not None:
            entry["database"] = statement.database.value
        if statement.transaction_mode != "caller":
            entry["transaction_mode"] = statement.transaction_mode
        entry["body"] = dump_node(statement.body)
        entry["span"] = span_text(statement.span)
        out.append(entry)
    return out
