"""Semantics-preserving optimizer passes, one module per pass; the order is in ``RULES``.

Each pass is a function named like its module that takes a workflow's root step and returns
the (possibly) rewritten root; the IR is immutable, so a pass that changes nothing returns its
input unchanged and the pipeline can tell which passes did something (``--explain-passes``).

Each pass module also has ``may_change(node)``, a cheap test on one node and its children that
is true wherever the pass could rewrite something. One walk over a workflow asks every pass,
and a pass no node answers for is skipped: it would have returned its input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from compiler import ir
from compiler.irwalk import preorder, walk
from compiler.optimizer import flatten as _flatten
from compiler.optimizer import fold_conditions as _fold_conditions
from compiler.optimizer import merge_sleeps as _merge_sleeps
from compiler.optimizer import remove_unreachable as _remove_unreachable
from compiler.optimizer.flatten import flatten
from compiler.optimizer.fold_conditions import fold_conditions
from compiler.optimizer.merge_sleeps import merge_sleeps
from compiler.optimizer.remove_unreachable import remove_unreachable

Pass = Callable[[ir.Node], ir.Node]

RULES: tuple[Pass, ...] = (
    fold_conditions,
    remove_unreachable,
    flatten,
    merge_sleeps,
)
_MAY_CHANGE: dict[Pass, Callable[[ir.Node], bool]] = {
    fold_conditions: _fold_conditions.may_change,
    remove_unreachable: _remove_unreachable.may_change,
    flatten: _flatten.may_change,
    merge_sleeps: _merge_sleeps.may_change,
}


@dataclass(frozen=True)
class PassRecord:
    """What one pass did to one workflow: the node counts before and after."""

    workflow: str
    name: str
    changed: bool
    nodes_before: int
    nodes_after: int
    before: ir.Node
    after: ir.Node


def optimize(program: ir.Program, log: list[PassRecord] | None = None) -> ir.Program:
    """Run every pass over every workflow of ``program``, in ``RULES`` order."""
    statements: list[ir.Statement] = []
    for statement in program.statements:
        if isinstance(statement, ir.Workflow):
            body = statement.body
            count = _count(body) if log is not None else 0
            pending = _passes_that_may_change(body)
            for rule in RULES:
                new = rule(body) if rule in pending else body
                if new is not body:
                    pending = _passes_that_may_change(new)
                if log is not None:
                    # A pass that changes nothing returns its input: no need to count again.
                    after = count if new is body else _count(new)
                    log.append(
                        PassRecord(
                            statement.name, rule.__name__, new is not body, count, after, body, new
                        )
                    )
                    count = after
                body = new
            if body is not statement.body:
                statement = replace(statement, body=body)
        statements.append(statement)
    return replace(program, statements=tuple(statements))


def _passes_that_may_change(root: ir.Node) -> set[Pass]:
    found: set[Pass] = set()
    for node in preorder(root):
        for rule, may_change in _MAY_CHANGE.items():
            if rule not in found and may_change(node):
                found.add(rule)
    return found


def _count(node: ir.Node) -> int:
    return sum(1 for _ in walk(node))
