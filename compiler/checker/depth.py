"""Nesting depth (DFC512): at most 256 levels below the root, as pg_durable enforces at start.

pg_durable counts the root as depth 0 and rejects a node at depth 257. dfc's n-ary chains are
flatter than pg_durable's nested pairs, so this counts dfc's own tree.
"""

from __future__ import annotations

from compiler import ir
from compiler.checker.context import CheckContext
from compiler.irwalk import children

MAX_DEPTH = 256


def check(ctx: CheckContext) -> None:
    for workflow in ctx.workflows:
        if len(ctx.nodes(workflow)) <= MAX_DEPTH:
            continue  # a node's depth is less than the number of nodes
        stack: list[tuple[ir.Node, int]] = [(workflow.body, 0)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                ctx.sink.add(
                    "DFC512",
                    node.span,
                    f"this step is nested {depth} levels deep; the limit is {MAX_DEPTH}",
                    hint="Flatten nested sequences or split the workflow into several workflows.",
                )
                break
            stack.extend((child, depth + 1) for child in children(node))
