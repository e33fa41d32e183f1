"""``dfc explain``: a workflow as a tree, in the style of pg_durable's dry-run ``df.explain``.

The layout follows pg_durable's (behaviour §3.6): a sequence is a chain whose later steps start
with ``→``; compound steps open sections (``? condition:``, ``✓ then:``, ``✗ else:``,
``↻ body:``, ``? while:``, ``║ branch N:``) whose steps hang off ``└─``/``├─``. Unlike
pg_durable, SQL is never truncated (further lines of a statement are indented under its first),
every named step shows its ``|=> 'name'``, trailing padding is not added, and dfc's extensions
have lines of their own. :func:`explain_json` gives the same tree as data.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from compiler import ir
from compiler.dump import span_text
from compiler.emit import http_method

_CONT = {"├─": "│ ", "└─": "  ", "→ ": "", "": ""}


def explain_text(workflow: ir.Workflow) -> str:
    """The tree of one workflow as text (no trailing newline)."""
    return "\n".join(_render(workflow.body, "", ""))


def explain_json(workflow: ir.Workflow) -> dict[str, Any]:
    """The tree of one workflow as JSON data."""
    return {"workflow": workflow.name, "root": _node_json(workflow.body)}


# -- labels -------------------------------------------------------------------------------------


def label(node: ir.Node) -> str:
    """The one-line description of a step (its first line for multi-line SQL)."""
    text: str = _LABELS[type(node)](node)
    if node.bind is not None:
        text += f" |=> '{node.bind.value}'"
    return text


def _q(text: str) -> str:
    return "'" + text + "'"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _signal(node: ir.WaitSignal) -> str:
    text = f"SIGNAL {_q(node.signal.value)}"
    return text + (f" ({node.timeout_seconds}s)" if node.timeout_seconds is not None else "")


def _schedule(node: ir.WaitSchedule) -> str:
    text = f"WAIT {_q(node.cron.value)}"
    return text + (f" ({node.time_zone.value})" if node.time_zone is not None else "")


_LABELS: dict[type[ir.Node], Any] = {
    ir.Sql: lambda n: "SQL: " + n.sql.value.strip().split("\n", 1)[0].rstrip(),
    ir.Seq: lambda n: "SEQUENCE",
    ir.Join: lambda n: f"JOIN ({len(n.branches)})",
    ir.Race: lambda n: "RACE" if len(n.branches) == 2 else f"RACE ({len(n.branches)})",
    ir.If: lambda n: "IF",
    ir.IfRows: lambda n: f"IF ROWS {_q(n.result_name.value)}",
    ir.Loop: lambda n: "LOOP (infinite)" if n.condition is None else "LOOP (while)",
    ir.Break: lambda n: "BREAK" if n.value is None else f"BREAK {_q(n.value.value)}",
    ir.Sleep: lambda n: f"SLEEP {n.seconds}s",
    ir.WaitSchedule: _schedule,
    ir.WaitSignal: _signal,
    ir.Http: lambda n: f"HTTP {http_method(n.method)} {n.url.value}",
    ir.HttpMultipart: lambda n: f"HTTP_MULTIPART {http_method(n.method)} {n.url.value}",
    ir.Retry: lambda n: (
        f"RETRY ({n.max_attempts} attempts, {_number(n.initial_delay_seconds)}s "
        f"x{_number(n.backoff_factor)}, max {_number(n.max_delay_seconds)}s)"
    ),
    ir.Timeout: lambda n: f"TIMEOUT {_number(n.seconds)}s",
    ir.Undo: lambda n: "UNDO",
}


def sections(node: ir.Node) -> list[tuple[str, list[ir.Node]]]:
    """The titled groups of child steps a compound step shows."""
    if isinstance(node, ir.If):
        out = [("? condition:", [node.condition]), ("✓ then:", [node.then])]
        return out + ([("✗ else:", [node.otherwise])] if node.otherwise is not None else [])
    if isinstance(node, ir.IfRows):
        out = [("✓ then:", [node.then])]
        return out + ([("✗ else:", [node.otherwise])] if node.otherwise is not None else [])
    if isinstance(node, ir.Loop):
        out = [("↻ body:", [node.body])]
        return out + ([("? while:", [node.condition])] if node.condition is not None else [])
    if isinstance(node, ir.Join | ir.Race):
        return [(f"║ branch {i + 1}:", [b]) for i, b in enumerate(node.branches)]
    if isinstance(node, ir.Retry | ir.Timeout):
        return [("↻ step:" if isinstance(node, ir.Retry) else "⏱ step:", [node.body])]
    if isinstance(node, ir.Undo):
        return [("→ do:", [node.body]), ("↶ undo:", [node.undo])]
    if isinstance(node, ir.Seq):
        return [("→ steps:", [node])]
    return []


# -- text ---------------------------------------------------------------------------------------


def _render(node: ir.Node, indent: str, lead: str) -> list[str]:
    cont = _CONT[lead]
    if isinstance(node, ir.Seq) and node.bind is None:
        lines = _render(node.steps[0], indent, lead)
        for step in node.steps[1:]:
            lines.extend(_render(step, indent + cont, "→ "))
        return lines
    lines = [indent + lead + label(node)]
    if isinstance(node, ir.Sql):
        rest = node.sql.value.strip().split("\n")[1:]
        pad = indent + cont + " " * (len(lead) - len(cont) + 5)
        lines.extend(pad + line for line in textwrap.dedent("\n".join(rest)).split("\n") if rest)
        return lines
    inner = indent + cont + "    "
    groups = sections(node)
    for index, (title, children) in enumerate(groups):
        lines.append(inner + title)
        for child in children:
            if isinstance(child, ir.Seq) and child is node:  # a named sequence's steps
                child = ir.Seq(span=child.span, steps=child.steps)
            branchy = isinstance(node, ir.Join | ir.Race) and index < len(groups) - 1
            lines.extend(_render(child, inner + "  ", "├─" if branchy else "└─"))
    return lines


# -- JSON ---------------------------------------------------------------------------------------

_ROLES = {"? condition:": "condition", "✓ then:": "then", "✗ else:": "else", "↻ body:": "body",
          "? while:": "while", "↻ step:": "step", "⏱ step:": "step", "→ do:": "do",
          "↶ undo:": "undo"}  # fmt: skip


def _node_json(node: ir.Node) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": node.kind,
        "label": _LABELS[type(node)](node) if not isinstance(node, ir.Sql) else "SQL",
        "bind": node.bind.value if node.bind is not None else None,
        "span": span_text(node.span),
    }
    if isinstance(node, ir.Sql):
        out["sql"] = node.sql.value
    children: list[dict[str, Any]] = []
    if isinstance(node, ir.Seq):
        children = [{"role": "step", "node": _node_json(s)} for s in node.steps]
    else:
        for title, nodes in sections(node):
            role = _ROLES.get(title) or title.strip("║ :")
            children.extend({"role": role, "node": _node_json(n)} for n in nodes)
    if children:
        out["children"] = children
    return out


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
