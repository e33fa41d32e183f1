"""Remove steps that can never run: those after a step of the same sequence that never
completes normally (a loop without a way out, a ``df.break``, or a step containing either on
every path). The checker reports them (DFC502); here they are dropped from the plan.

>>> from compiler.optimizer.tree import show, step
>>> show(remove_unreachable(step("'a' ~> (@> 'b') ~> 'c'")))
"'a' ~> (@> 'b')"
>>> show(remove_unreachable(step("@> ('a' ~> df.break() ~> 'b')")))
"@> ('a' ~> df.break())"
>>> show(remove_unreachable(step("(@> ('a' ~> ('SELECT 1' ?> df.break()))) ~> 'c'")))
"(@> ('a' ~> ('SELECT 1' ?> df.break()))) ~> 'c'"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from compiler import ir
from compiler.irwalk import children
from compiler.optimizer.tree import bottom_up


def remove_unreachable(root: ir.Node) -> ir.Node:
    return bottom_up(root, _trim)


# The node kinds :func:`may_change` can be true for.
KINDS: tuple[type[ir.Node], ...] = (ir.Break, ir.Loop)


def may_change(node: ir.Node) -> bool:
    """Whether the pass can rewrite a tree with this node: nothing diverges without one."""
    return isinstance(node, ir.Break) or (isinstance(node, ir.Loop) and node.condition is None)


def _trim(node: ir.Node) -> ir.Node:
    if not isinstance(node, ir.Seq):
        return node
    memo: dict[int, bool] = {}
    for index, step in enumerate(node.steps[:-1]):
        if diverges(step, memo):
            steps = node.steps[: index + 1]
            if len(steps) == 1 and node.bind is None:
                return steps[0]
            return replace(node, steps=steps)
    return node


def diverges(node: ir.Node, memo: dict[int, bool] | None = None) -> bool:
    """True when ``node`` can never complete normally (it loops forever or jumps out).

    ``memo`` (keyed by node identity) keeps repeated questions about one tree linear.
    """
    if memo is None:
        return _diverges(node, {})
    return _diverges(node, memo)


def _diverges(node: ir.Node, memo: dict[int, bool]) -> bool:
    known = memo.get(id(node))
    if known is None:
        known = memo[id(node)] = _compute(node, lambda child: _diverges(child, memo))
    return known


def _compute(node: ir.Node, diverges: Callable[[ir.Node], bool]) -> bool:
    if isinstance(node, ir.Break):
        return True
    if isinstance(node, ir.Loop):
        if breaks_out(node):
            return False
        return node.condition is None or diverges(node.body) or diverges(node.condition)
    if isinstance(node, ir.Seq):
        return any(diverges(step) for step in node.steps)
    if isinstance(node, ir.Join):
        return any(diverges(branch) for branch in node.branches)
    if isinstance(node, ir.Race):
        return all(diverges(branch) for branch in node.branches)
    if isinstance(node, ir.If):
        if diverges(node.condition):
            return True
        return node.otherwise is not None and diverges(node.then) and diverges(node.otherwise)
    if isinstance(node, ir.IfRows):
        return node.otherwise is not None and diverges(node.then) and diverges(node.otherwise)
    if isinstance(node, ir.Retry | ir.Timeout | ir.Undo):
        return diverges(node.body)
    return False


def breaks_out(loop: ir.Loop) -> bool:
    """True when a ``df.break`` inside ``loop`` (not inside a nested loop) can end it."""
    stack = [loop.body] + ([loop.condition] if loop.condition is not None else [])
    while stack:
        node = stack.pop()
        if isinstance(node, ir.Break):
            return True
        if isinstance(node, ir.Loop):
            continue
        stack.extend(children(node))
    return False
