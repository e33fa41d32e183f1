"""Fast traversal of the IR for the back end's hot paths.

:meth:`compiler.ir.Node.children` finds child steps by inspecting dataclass fields on every
call, which dominates the checker's and emitter's time on large files. The child fields of each
node kind are fixed, so they are listed here once (and checked against ``ir.NODE_TYPES`` by the
tests); :func:`children` and :func:`walk` give the same order as the IR's own methods.
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler import ir

CHILD_FIELDS: dict[type[ir.Node], tuple[str, ...]] = {
    ir.Sql: (),
    ir.Seq: ("steps",),
    ir.Join: ("branches",),
    ir.Race: ("branches",),
    ir.If: ("condition", "then", "otherwise"),
    ir.IfRows: ("then", "otherwise"),
    ir.Loop: ("body", "condition"),
    ir.Break: (),
    ir.Sleep: (),
    ir.WaitSchedule: (),
    ir.WaitSignal: (),
    ir.Http: (),
    ir.HttpMultipart: (),
    ir.Retry: ("body",),
    ir.Timeout: ("body",),
    ir.Undo: ("body", "undo"),
}


def children(node: ir.Node) -> list[ir.Node]:
    """Direct child steps in execution/source order (as ``node.children()``)."""
    out: list[ir.Node] = []
    for name in CHILD_FIELDS[type(node)]:
        value = getattr(node, name)
        if value is None:
            continue
        if isinstance(value, tuple):
            out.extend(value)
        else:
            out.append(value)
    return out


def walk(node: ir.Node) -> Iterator[ir.Node]:
    """``node`` and its descendants in pre-order (as ``node.walk()``), without recursion."""
    stack = [node]
    pop, extend = stack.pop, stack.extend
    while stack:
        current = pop()
        yield current
        fields = CHILD_FIELDS[type(current)]
        if fields:
            extend(reversed(children(current)))
