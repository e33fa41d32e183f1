"""Merge adjacent sleeps of a sequence into one: ``df.sleep(5) ~> df.sleep(10)`` waits 15 s.

Only unnamed sleeps are merged, and the pair's second sleep must not give the sequence its
observable result (a sleep's result records its own seconds).

>>> from compiler.optimizer.tree import show, step
>>> show(merge_sleeps(step("'a' ~> df.sleep(5) ~> df.sleep(10) ~> 'b'")))
"'a' ~> df.sleep(15) ~> 'b'"
>>> show(merge_sleeps(step("'a' ~> df.sleep(5) ~> df.sleep(10)")))
"'a' ~> df.sleep(5) ~> df.sleep(10)"
>>> show(merge_sleeps(step("(df.sleep(1) ~> df.sleep(2)) ~> 'b'")))
"df.sleep(3) ~> 'b'"
"""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

from compiler import ir
from compiler.optimizer.tree import join_spans, with_observability


def merge_sleeps(root: ir.Node) -> ir.Node:
    return with_observability(root, _merge)


# The node kinds :func:`may_change` can be true for.
KINDS: tuple[type[ir.Node], ...] = (ir.Seq,)


def may_change(node: ir.Node) -> bool:
    """Whether the pass can rewrite this node: a sequence with two sleeps in a row."""
    if not isinstance(node, ir.Seq):
        return False
    # Asked of every sequence: first, without a Python-level step per child, whether it has two
    # sleeps at all.
    if sum(map(ir.Sleep.__instancecheck__, node.steps)) < 2:
        return False
    return any(isinstance(a, ir.Sleep) and isinstance(b, ir.Sleep) for a, b in pairwise(node.steps))


def _merge(node: ir.Node, observable: bool) -> ir.Node:
    if not isinstance(node, ir.Seq):
        return node
    steps: list[ir.Node] = []
    last = len(node.steps) - 1
    for index, step in enumerate(node.steps):
        previous = steps[-1] if steps else None
        if (
            isinstance(step, ir.Sleep)
            and isinstance(previous, ir.Sleep)
            and step.bind is None
            and previous.bind is None
            and (index != last or not observable)
        ):
            steps[-1] = replace(
                previous,
                seconds=previous.seconds + step.seconds,
                span=join_spans(previous.span, step.span),
            )
            continue
        steps.append(step)
    if len(steps) == len(node.steps):
        return node
    if len(steps) == 1 and node.bind is None:
        return steps[0]
    return replace(node, steps=tuple(steps))
