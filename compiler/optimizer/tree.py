"""Helpers the passes share: rebuilding a node around new children, knowing which results can
be observed, and a compact source-like rendering of a step (for docstring examples and
``dfc compile --explain-passes``).

Rebuilding keeps identity: a node whose children did not change is returned as it is, so a
pass that changes nothing returns its very input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from operator import is_not

from compiler import ir
from compiler.irwalk import CHILD_FIELDS
from compiler.source import Span

Rewrite = Callable[[ir.Node, bool], ir.Node]


def map_children(node: ir.Node, fn: Callable[[ir.Node], ir.Node]) -> ir.Node:
    """``node`` with ``fn`` applied to each direct child step; ``node`` itself if none changed."""
    changes: dict[str, object] = {}
    for name in CHILD_FIELDS[type(node)]:
        value = getattr(node, name)
        if value is None:
            continue
        if type(value) is tuple:
            items = tuple(map(fn, value))
            if _changed(items, value):
                changes[name] = items
        else:
            new = fn(value)
            if new is not value:
                changes[name] = new
    return replace(node, **changes) if changes else node  # type: ignore[arg-type]


def _changed(new: tuple[ir.Node, ...], old: tuple[ir.Node, ...]) -> bool:
    """Whether any item is a different object (one C-level pass: this runs for every node)."""
    return any(map(is_not, new, old))


def bottom_up(node: ir.Node, fn: Callable[[ir.Node], ir.Node]) -> ir.Node:
    """Apply ``fn`` to every node, children first."""
    if CHILD_FIELDS[type(node)]:
        node = map_children(node, lambda child: bottom_up(child, fn))
    return fn(node)


def with_observability(node: ir.Node, fn: Rewrite, observable: bool = True) -> ir.Node:
    """Apply ``fn(node, observable)`` to every node, children first.

    ``observable`` is False when nothing can ever read the node's result: a step of a sequence
    that is not the last one, a compensating step, or anything inside such a step whose result
    only flows into it. The workflow's root result is observable (``df.result``).
    """
    seen = observable or node.bind is not None
    kind = type(node)
    if kind is ir.Seq:
        assert isinstance(node, ir.Seq)
        last = len(node.steps) - 1
        steps = tuple(
            with_observability(step, fn, seen and i == last) for i, step in enumerate(node.steps)
        )
        if _changed(steps, node.steps):
            node = replace(node, steps=steps)
    elif kind is ir.If or kind is ir.Loop:
        assert isinstance(node, ir.If | ir.Loop)
        node = _children(node, fn, seen, conditions=True)
    elif kind is ir.Undo:
        assert isinstance(node, ir.Undo)
        body = with_observability(node.body, fn, seen)
        undo = with_observability(node.undo, fn, False)
        if body is not node.body or undo is not node.undo:
            node = replace(node, body=body, undo=undo)
    elif CHILD_FIELDS[kind]:
        node = map_children(node, lambda child: with_observability(child, fn, seen))
    return fn(node, seen)


def _children(node: ir.If | ir.Loop, fn: Rewrite, seen: bool, conditions: bool) -> ir.Node:
    def visit(child: ir.Node) -> ir.Node:
        # A condition's result decides a branch, so its shape always matters.
        is_condition = conditions and child is node.condition
        return with_observability(child, fn, True if is_condition else seen)

    return map_children(node, visit)


def join_spans(first: Span, last: Span) -> Span:
    return Span(first.start, last.end, first.line, first.column, last.end_line, last.end_column)


def step(text: str) -> ir.Node:
    """The root step of a one-workflow source text (for examples and tests)."""
    from compiler.api import front_end

    result = front_end(text, "example.dsql")
    if result.has_errors or not result.program.workflows:
        raise ValueError(f"not a valid workflow: {text!r}")
    return result.program.workflows[0].body


def show(node: ir.Node) -> str:
    """A compact, source-like rendering of a step; compound operands are parenthesised."""
    text = _SHOW[type(node)](node)
    if node.bind is not None:
        text = f"{_operand(node, text)} |=> '{node.bind.value}'"
    return text


def _operand(node: ir.Node, text: str) -> str:
    compound = isinstance(node, ir.Seq | ir.Join | ir.Race | ir.If | ir.Undo) or (
        isinstance(node, ir.Loop) and node.condition is None
    )
    return f"({text})" if compound else text


def _part(node: ir.Node) -> str:
    text = show(node)
    compound = (
        node.bind is not None
        or isinstance(node, ir.Seq | ir.Join | ir.Race | ir.If | ir.Undo)
        or (isinstance(node, ir.Loop) and node.condition is None)
    )
    return f"({text})" if compound else text


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _show_if(node: ir.If) -> str:
    text = f"{_part(node.condition)} ?> {_part(node.then)}"
    return text if node.otherwise is None else f"{text} !> {_part(node.otherwise)}"


def _show_loop(node: ir.Loop) -> str:
    if node.condition is None:
        return f"@> {_part(node.body)}"
    return f"df.loop({show(node.body)}, {show(node.condition)})"


def _show_http(node: ir.Http | ir.HttpMultipart) -> str:
    method = node.method.value.upper() if node.method is not None else "POST"
    return f"df.{node.kind}({_q(node.url.value)}, {_q(method)}, ...)"


_SHOW: dict[type[ir.Node], Callable[..., str]] = {
    ir.Sql: lambda n: _q(n.sql.value),
    ir.Seq: lambda n: " ~> ".join(_part(s) for s in n.steps),
    ir.Join: lambda n: " & ".join(_part(s) for s in n.branches),
    ir.Race: lambda n: " | ".join(_part(s) for s in n.branches),
    ir.If: _show_if,
    ir.IfRows: lambda n: (
        f"df.if_rows({_q(n.result_name.value)}, {show(n.then)}, "
        + ("NULL" if n.otherwise is None else show(n.otherwise))
        + ")"
    ),
    ir.Loop: _show_loop,
    ir.Break: lambda n: "df.break()" if n.value is None else f"df.break({_q(n.value.value)})",
    ir.Sleep: lambda n: f"df.sleep({n.seconds})",
    ir.WaitSchedule: lambda n: (
        f"df.wait_for_schedule({_q(n.cron.value)}"
        + (f", {_q(n.time_zone.value)})" if n.time_zone is not None else ")")
    ),
    ir.WaitSignal: lambda n: (
        f"df.wait_for_signal({_q(n.signal.value)}"
        + (f", {n.timeout_seconds})" if n.timeout_seconds is not None else ")")
    ),
    ir.Http: _show_http,
    ir.HttpMultipart: _show_http,
    ir.Retry: lambda n: f"df.retry({show(n.body)}, {n.max_attempts})",
    ir.Timeout: lambda n: f"df.timeout({show(n.body)}, {json.dumps(n.seconds)})",
    ir.Undo: lambda n: f"{_part(n.body)} <-> {_part(n.undo)}",
}
