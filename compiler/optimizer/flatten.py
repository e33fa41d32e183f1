"""Flatten nested sequences, races and (where the array shape cannot be seen) joins.

``a ~> (b ~> c)`` runs exactly like ``a ~> b ~> c`` and a race inside a race is one race of all
the branches, so an unnamed nested sequence or race is spliced into its parent. A nested join
changes the shape of the parent's result (``[[a, b], c]`` against ``[a, b, c]``), so joins are
spliced only where nothing reads that result. A sequence of one step is that step.

>>> from compiler.optimizer.tree import show, step
>>> show(flatten(step("'a' ~> ('b' ~> 'c')")))
"'a' ~> 'b' ~> 'c'"
>>> show(flatten(step("'a' | ('b' | df.sleep(1))")))
"'a' | 'b' | df.sleep(1)"
>>> show(flatten(step("('a' & ('b' & 'c')) ~> 'd'")))
"('a' & 'b' & 'c') ~> 'd'"
>>> show(flatten(step("'a' & ('b' & 'c')")))
"'a' & ('b' & 'c')"
"""

from __future__ import annotations

from dataclasses import replace

from compiler import ir
from compiler.optimizer.tree import with_observability


def flatten(root: ir.Node) -> ir.Node:
    return with_observability(root, _flatten)


# The node kinds :func:`may_change` can be true for.
KINDS: tuple[type[ir.Node], ...] = (ir.Seq, ir.Race, ir.Join)


def may_change(node: ir.Node) -> bool:
    """Whether the pass can rewrite this node: one step, or an unnamed child of its kind."""
    if isinstance(node, ir.Seq):
        return len(node.steps) == 1 or _nested(node.steps, ir.Seq)
    if isinstance(node, ir.Race):
        return _nested(node.branches, ir.Race)
    if isinstance(node, ir.Join):
        return _nested(node.branches, ir.Join)
    return False


def _nested(children: tuple[ir.Node, ...], kind: type[ir.Node]) -> bool:
    # Asked of every sequence, join and race: most have no child of their kind, which the
    # isinstance tests mapped in C find without a Python-level step per child.
    if not any(map(kind.__instancecheck__, children)):
        return False
    return any(isinstance(c, kind) and c.bind is None for c in children)


def _flatten(node: ir.Node, observable: bool) -> ir.Node:
    if isinstance(node, ir.Seq):
        steps = _splice(node.steps, ir.Seq)
        if len(steps) == 1 and node.bind is None:
            return steps[0]
        return node if steps == node.steps else replace(node, steps=steps)
    if isinstance(node, ir.Race):
        branches = _splice(node.branches, ir.Race)
        return node if branches == node.branches else replace(node, branches=branches)
    if isinstance(node, ir.Join) and not observable:
        branches = _splice(node.branches, ir.Join)
        return node if branches == node.branches else replace(node, branches=branches)
    return node


def _splice(
    children: tuple[ir.Node, ...], kind: type[ir.Seq | ir.Race | ir.Join]
) -> tuple[ir.Node, ...]:
    if not any(isinstance(c, kind) and c.bind is None for c in children):
        return children
    out: list[ir.Node] = []
    for child in children:
        if isinstance(child, kind) and child.bind is None:
            out.extend(child.steps if isinstance(child, ir.Seq) else child.branches)
        else:
            out.append(child)
    return tuple(out)
