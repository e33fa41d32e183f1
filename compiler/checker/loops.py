"""Loops and reachability (DFC501, DFC502).

``df.break`` outside any loop fails the instance at run time in pg_durable; here it is an error.
A step after one that never completes normally (a loop without a way out, a ``df.break``, or a
step with one of those on every path) can never run: a warning at the first such step. The
optimizer's :mod:`compiler.optimizer.remove_unreachable` drops those steps from the plan.
"""

from __future__ import annotations

from compiler import ir
from compiler.checker.context import CheckContext
from compiler.irwalk import children
from compiler.optimizer.remove_unreachable import diverges
from compiler.optimizer.remove_unreachable import may_change as may_diverge
from compiler.source import Span


def check(ctx: CheckContext) -> None:
    for workflow in ctx.workflows:
        by_kind = ctx.steps(workflow).by_kind
        breaks = by_kind.get(ir.Break, [])
        if breaks:
            _breaks(ctx, workflow.body)
        # Only a break or a loop may fail to complete; without one, no step is unreachable.
        if breaks or any(may_diverge(node) for node in by_kind.get(ir.Loop, ())):
            _unreachable(ctx, ctx.nodes(workflow))


def _breaks(ctx: CheckContext, root: ir.Node) -> None:
    stack: list[tuple[ir.Node, bool]] = [(root, False)]
    while stack:
        node, in_loop = stack.pop()
        if isinstance(node, ir.Break) and not in_loop:
            ctx.sink.add(
                "DFC501",
                node.span,
                "df.break() outside a loop",
                hint="df.break leaves the nearest enclosing loop (@> or df.loop); outside one "
                "the instance would fail when it gets here.",
            )
        inside = in_loop or isinstance(node, ir.Loop)
        stack.extend((child, inside) for child in children(node))


def _unreachable(ctx: CheckContext, nodes: list[ir.Node]) -> None:
    memo: dict[int, bool] = {}
    for node in nodes:
        if not isinstance(node, ir.Seq):
            continue
        for index, step in enumerate(node.steps[:-1]):
            if diverges(step, memo):
                following = node.steps[index + 1]
                ctx.sink.add(
                    "DFC502",
                    ir_span(following, node.steps[-1]),
                    "unreachable: the step before this one never completes "
                    + (
                        "(df.break leaves the loop)"
                        if isinstance(step, ir.Break)
                        else "(a loop without df.break runs forever)"
                        if isinstance(step, ir.Loop)
                        else "(it always loops forever or breaks out)"
                    ),
                    hint="Remove these steps, or give the loop a way out with df.break() or a "
                    "while-condition (df.loop(body, condition)).",
                )
                break


def ir_span(first: ir.Node, last: ir.Node) -> Span:
    from compiler.optimizer.tree import join_spans

    return join_spans(first.span, last.span)
