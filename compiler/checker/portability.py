"""Portability (DFC601): where pg_durable would group an expression differently from dfc.

The places are found while the parser reduces each statement (:mod:`compiler.grouping`, which
explains the rule); this module words them and offers the quick fix: parentheses around the
operand, which make pg_durable read it as dfc does.
"""

from __future__ import annotations

from compiler.checker.context import CheckContext
from compiler.diagnostics import Edit, Fix
from compiler.grouping import Regrouping
from compiler.source import Span


def check(ctx: CheckContext) -> None:
    if ctx.parsed is None:
        return
    for statement in ctx.parsed.statements:
        for regrouping in statement.regroupings:
            _report(ctx, regrouping)


def _report(ctx: CheckContext, found: Regrouping) -> None:
    start, end = found.start, found.end
    operator, inner = found.operator, found.inner
    text = " ".join(ctx.source.text[start : found.first_term_end].split())
    first = text if len(text) <= 30 else text[:27] + "..."
    span = ctx.source.span(start, end)
    # The fix's insertion points are the ends of ``span``, whose positions are known already.
    before = Span(start, start, span.line, span.column, span.line, span.column)
    after = Span(span.end, span.end, span.end_line, span.end_column, span.end_line, span.end_column)
    fix = Fix(
        "Add parentheses (same meaning in dfc and pg_durable)",
        (Edit(before, "("), Edit(after, ")")),
    )
    ctx.sink.add(
        "DFC601",
        span,
        f"pg_durable reads this differently: it applies {operator} to {first} alone, then "
        f"{inner} to the result",
        hint=f"dfc gives {inner} precedence over {operator} (DSL.md §2); pg_durable applies all "
        "its operators left to right. Parentheses make both read it the same way.",
        fixes=(fix,),
    )
