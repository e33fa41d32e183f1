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


# The child fields in reverse, for pushing children on a stack so they pop in order.
_PUSH_ORDER = {kind: tuple(reversed(names)) for kind, names in CHILD_FIELDS.items()}


def preorder(node: ir.Node) -> list[ir.Node]:
    """``node`` and its descendants in pre-order (as ``node.walk()``), without recursion."""
    out: list[ir.Node] = []
    stack = [node]
    pop, push, extend, add = stack.pop, stack.append, stack.extend, out.append
    while stack:
        current = pop()
        add(current)
        for name in _PUSH_ORDER[type(current)]:
            value = getattr(current, name)
            if value is None:
                continue
            if type(value) is tuple:
                extend(reversed(value))
            else:
                push(value)
    return out


def walk(node: ir.Node) -> Iterator[ir.Node]:
    """``node`` and its descendants in pre-order (as ``node.walk()``), without recursion."""
    return iter(preorder(node))
