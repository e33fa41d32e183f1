"""Fold conditions whose SQL is constant and drop the branch that can never be taken.

Whether a condition is constant is decided on PostgreSQL's own parse tree
(:func:`compiler.sqlshape.analyse`): a ``SELECT`` of literals, boolean and comparison operators,
with no table, function or reference. Its truthiness follows the runtime's rules. The IF's
result name moves to the branch that stays (wrapped in a one-step sequence where the branch has
its own name or cannot store one), and a named condition is never folded, since its result is
observable. An IF without else whose condition is false disappears when nothing reads its
result.

>>> from compiler.optimizer.tree import show, step
>>> show(fold_conditions(step("'SELECT 1 > 0' ?> 'a' !> 'b'")))
"'a'"
>>> show(fold_conditions(step("('SELECT false' ?> 'a' !> 'b') |=> 'x'")))
"'b' |=> 'x'"
>>> show(fold_conditions(step("'x' ~> ('SELECT NOT true' ?> 'a') ~> 'y'")))
"'x' ~> 'y'"
>>> show(fold_conditions(step("'SELECT count(*) > 0 FROM t' ?> 'a' !> 'b'")))
"'SELECT count(*) > 0 FROM t' ?> 'a' !> 'b'"
"""

from __future__ import annotations

from dataclasses import replace

from compiler import ir
from compiler.optimizer.tree import with_observability
from compiler.refs import scan_sql
from compiler.sqlshape import analyse

_NO_STORE = (ir.Sleep, ir.WaitSchedule, ir.Break)


def fold_conditions(root: ir.Node) -> ir.Node:
    return with_observability(root, _fold)


# The node kinds :func:`may_change` can be true for.
KINDS: tuple[type[ir.Node], ...] = (ir.If,)


def may_change(node: ir.Node) -> bool:
    """Whether the pass can rewrite a tree with this node: every change needs a constant IF."""
    return isinstance(node, ir.If) and constant_condition(node.condition) is not None


def constant_condition(node: ir.Node) -> bool | None:
    """The truth value of a constant SQL condition, else None."""
    if not isinstance(node, ir.Sql) or node.bind is not None:
        return None
    scan = scan_sql(node.sql.value)
    if scan.refs or scan.variables or scan.params:
        return None
    return analyse(scan.masked).constant


def _fold(node: ir.Node, observable: bool) -> ir.Node:
    if isinstance(node, ir.If):
        value = constant_condition(node.condition)
        if value is None:
            return node
        taken = node.then if value else node.otherwise
        if taken is None:
            return node  # removed by the enclosing sequence when its result is unread
        if node.bind is None:
            return taken
        if taken.bind is None and not isinstance(taken, _NO_STORE):
            return replace(taken, bind=node.bind)
        return ir.Seq(span=node.span, steps=(taken,), bind=node.bind)
    if isinstance(node, ir.Seq):
        last = len(node.steps) - 1
        steps = tuple(
            step
            for index, step in enumerate(node.steps)
            if not _vanishes(step, index != last or not observable)
        )
        if len(steps) == len(node.steps):
            return node
        if not steps:
            return node
        if len(steps) == 1 and node.bind is None:
            return steps[0]
        return replace(node, steps=steps)
    return node


def _vanishes(step: ir.Node, unread: bool) -> bool:
    return (
        unread
        and isinstance(step, ir.If)
        and step.otherwise is None
        and step.bind is None
        and constant_condition(step.condition) is False
    )
