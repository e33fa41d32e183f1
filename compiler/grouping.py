"""Operands that pg_durable groups differently from dfc (DFC601), noted while the parser reduces.

pg_durable has no parser of its own: its operators are PostgreSQL operators, which all share one
precedence level and group left to right, with the prefix ``@>`` binding tightest (behaviour
§2.2). dfc uses the documented precedence (DSL.md §2). The two readings of an unparenthesised
expression agree exactly when every operand to the *right* of an operator (and the operand of
``@>``) is a single term: a left operand groups the same way under both rules. So every right
operand that is itself an operator expression without parentheses is a place where the meanings
differ (:class:`Regrouping`); :mod:`compiler.checker.portability` reports them.

One case is let through because the meaning is the same: ``a ~> b |=> 'x'`` names the sequence
in pg_durable and ``b`` in dfc, and a named sequence stores its last step's result.

Lowering builds values straight from the parser's reductions, so there is no tree to look at
afterwards: :class:`Grouping` is told about each operator's value as it is made, and about
parentheses and casts, which hand their operand's value up unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.frozen import quick_init

OPERATORS = {
    "seq": "~>",
    "race": "|",
    "join": "&",
    "if_then": "?>",
    "if_else": "?>",
    "bind": "|=>",
    "undo": "<->",
    "concat": "||",
    "loop": "@>",
}


# The n-ary operators: every operand after the first is a right operand.
_N_ARY = {"seq": "~>", "race": "|", "join": "&"}
# The other operators' right operands: (the operator written before it, its index).
_RIGHT_OPERANDS = {
    "if_else": (("?>", 1), ("!>", 2)),
    "if_then": (("?>", 1),),
    "undo": (("<->", 1),),
    "loop": (("@>", 0),),
}


@quick_init
@dataclass(frozen=True, slots=True)
class Regrouping:
    """A right operand pg_durable reads differently; offsets are file offsets."""

    operator: str  # the operator whose right operand it is, e.g. "&"
    inner: str  # the operand's own operator, e.g. "|=>"
    start: int
    end: int
    first_term_end: int  # where the operand's first term (pg_durable's right operand) ends


# What :class:`Grouping` keeps of an operator expression, by the id() of its value: (the value,
# kept so that its id() is not reused while the statement is lowered; the operator's kind;
# where its first term ends; whether it is ``x |=> 'n'`` with x a single term). A plain tuple:
# one is made per operator.
_Operation = tuple[Any, str, int, bool]


class Grouping:
    """The operator expressions of one statement and the regroupings found among them.

    Values are told apart by identity: parentheses and some casts hand the very value of their
    operand up, so the value alone cannot say whether it was parenthesised.
    """

    def __init__(self) -> None:
        self.found: list[Regrouping] = []
        self._operations: dict[int, _Operation] = {}
        self._ends: dict[int, tuple[Any, int]] = {}

    def operator(self, kind: str, value: Any, operands: list[Any]) -> None:
        """``value`` is the result of operator ``kind`` over ``operands``."""
        operations = self._operations
        left = operands[0]
        first = operations.get(id(left))
        if first is not None:
            first_term_end = first[2]
        else:
            ended = self._ends.get(id(left))
            first_term_end = ended[1] if ended is not None else left.span.end
        symbol = _N_ARY.get(kind)
        if symbol is not None:
            for operand in operands[1:]:
                found = operations.get(id(operand))
                if found is not None and not (kind == "seq" and found[3]):
                    self._regrouped(symbol, operand, found)
        else:
            for symbol, index in _RIGHT_OPERANDS.get(kind, ()):
                operand = operands[index]
                found = operations.get(id(operand))
                if found is not None:
                    self._regrouped(symbol, operand, found)
        if kind != "loop":
            operations[id(value)] = (value, kind, first_term_end, kind == "bind" and first is None)

    def _regrouped(self, operator: str, operand: Any, found: _Operation) -> None:
        """``operand``, the operation ``found``, is the right operand of ``operator``."""
        span = operand.span
        self.found.append(Regrouping(operator, OPERATORS[found[1]], span.start, span.end, found[2]))

    def term(self, value: Any, end: int) -> None:
        """``value`` is handed up as a single term (parenthesised, cast) ending at ``end``."""
        self._operations.pop(id(value), None)
        if value.span.end != end:
            self._ends[id(value)] = (value, end)
