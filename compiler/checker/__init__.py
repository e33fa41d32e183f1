"""The checker: every compile-time rule of DSL.md §6, one module per rule family.

Each rule module exposes ``check(ctx)``, which reads the program and adds diagnostics to the
sink; the order below is the order diagnostics are found in (they are sorted by position for
output anyway). The checker never changes the program, and it runs only on what lowering
produced, so it never sees a statement that had a syntax error.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler import ir
from compiler.checker import (
    depth,
    labels,
    loops,
    names,
    portability,
    schedule,
    sql,
    values,
    variables,
)
from compiler.checker.context import CheckContext
from compiler.diagnostics import DiagnosticSink
from compiler.parser import ParseResult

Rule = Callable[[CheckContext], None]

RULES: tuple[Rule, ...] = (
    labels.check,
    depth.check,
    sql.check,
    values.check,
    schedule.check,
    variables.check,
    loops.check,
    names.check,
    portability.check,
)


def check(program: ir.Program, parsed: ParseResult | None, sink: DiagnosticSink) -> None:
    """Run every rule over ``program``; diagnostics go to ``sink``."""
    ctx = CheckContext.create(program, parsed, sink)
    for rule in RULES:
        rule(ctx)
