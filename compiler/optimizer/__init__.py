"""Semantics-preserving optimizer passes, one module per pass; the order is in ``RULES``.

Each pass is a function named like its module that takes a workflow's root step and returns
the (possibly) rewritten root; the IR is immutable, so a pass that changes nothing returns its
input unchanged and the pipeline can tell which passes did something (``--explain-passes``).

Each pass module also has ``may_change(node)``, a cheap test on one node and its children that
is true wherever the pass could rewrite something, and ``KINDS``, the node kinds it can be true
for. One walk over a workflow asks, at each node, the passes that look at its kind; a pass no
node answers for is skipped: it would have returned its input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from compiler import ir
from compiler.frozen import quick_init
from compiler.irwalk import CHILD_FIELDS
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
_MODULES = {
    fold_conditions: _fold_conditions,
    remove_unreachable: _remove_unreachable,
    flatten: _flatten,
    merge_sleeps: _merge_sleeps,
}
# For each node kind, the passes to ask about a node of that kind, with their tests.
_ASK: dict[type[ir.Node], tuple[tuple[Pass, Callable[[ir.Node], bool]], ...]] = {
    kind: tuple(
        (rule, module.may_change) for rule, module in _MODULES.items() if kind in module.KINDS
    )
    for kind in ir.NODE_TYPES.values()
}


@quick_init  # the pipeline keeps one per pass and workflow: thousands on a large file
@dataclass(frozen=True, slots=True)
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
            count, pending = _survey(body)
            for rule in RULES:
                new = rule(body) if rule in pending else body
                # A pass that changes nothing returns its input: no need to look again.
                after = count
                if new is not body:
                    after, pending = _survey(new)
                if log is not None:
                    log.append(
                        PassRecord(
                            statement.name, rule.__name__, new is not body, count, after, body, new
                        )
                    )
                count, body = after, new
            if body is not statement.body:
                statement = replace(statement, body=body)
        statements.append(statement)
    return replace(program, statements=tuple(statements))


def _survey(root: ir.Node) -> tuple[int, set[Pass]]:
    """The number of steps under ``root``, and the passes that may change that tree.

    One walk over every step of the file: written as a flat loop over a stack (children are
    visited in any order), asking each step only the passes that look at its kind.
    """
    found: set[Pass] = set()
    count = 0
    stack = [root]
    pop, push, extend, ask, child_fields = stack.pop, stack.append, stack.extend, _ASK, CHILD_FIELDS
    while stack:
        node = pop()
        count += 1
        kind = type(node)
        for rule, may_change in ask[kind]:
            if rule not in found and may_change(node):
                found.add(rule)
        for name in child_fields[kind]:
            value = getattr(node, name)
            if value is None:
                continue
            if type(value) is tuple:
                extend(value)
            else:
                push(value)
    return count, found
