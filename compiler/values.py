"""Intermediate values of lowering: what an expression denotes before it becomes a step.

An operand can be a string (which becomes a SQL step where a step is expected), a number, a
JSON literal, a boolean, NULL, a step, or a call of a statement-level function such as
``df.start`` (meaningful only at the top of a statement).

These records never leave lowering and nothing changes them once made; they are not declared
frozen because a frozen dataclass sets each field through ``object.__setattr__``, which made
building them (one or more per operand) twice as slow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.catalogue import Function
from compiler.ir import Node, Text
from compiler.source import Span


@dataclass(slots=True)
class Value:
    span: Span

    def describe(self) -> str:
        return "a value"


@dataclass(slots=True)
class StrValue(Value):
    text: Text
    form: str  # quote | escape | unicode | dollar | concat

    def describe(self) -> str:
        return "a string"


@dataclass(slots=True)
class IntValue(Value):
    value: int

    def describe(self) -> str:
        return "an integer"


@dataclass(slots=True)
class NumValue(Value):
    value: float

    def describe(self) -> str:
        return "a decimal number"


@dataclass(slots=True)
class BoolValue(Value):
    value: bool

    def describe(self) -> str:
        return "a boolean"


@dataclass(slots=True)
class NullValue(Value):
    def describe(self) -> str:
        return "NULL"


@dataclass(slots=True)
class JsonValue(Value):
    value: Any

    def describe(self) -> str:
        return "a JSON value"


@dataclass(slots=True)
class NodeValue(Value):
    node: Node

    def describe(self) -> str:
        return "a workflow step"


@dataclass(slots=True)
class CallValue(Value):
    """A call of a statement or management function, with its bound arguments."""

    function: Function
    args: dict[str, Value]
    name_span: Span

    def describe(self) -> str:
        return f"a call of {self.function.qualified_name}"


@dataclass(slots=True)
class ErrorValue(Value):
    """Stands in for an operand that already produced a diagnostic."""

    def describe(self) -> str:
        return "an invalid value"
