"""``{var}`` references (DFC510): warn about variables the file never declares.

A variable is declared by ``SELECT df.setvar('name', 'value')`` in the same file (the value is
its default); ``sys_instance_id`` and ``sys_label`` always exist. The caller may still set an
undeclared variable before ``df.start``, so this is a warning, not an error: left unset, the
``{var}`` text stays in the statement as it is.
"""

from __future__ import annotations

import difflib

from compiler import ir
from compiler.checker.context import CheckContext, raw_texts
from compiler.diagnostics import Edit, Fix
from compiler.refs import VarRef, scan_text

SYSTEM_VARIABLES = ("sys_instance_id", "sys_label")


def check(ctx: CheckContext) -> None:
    declared = set(ctx.program.variables) | set(SYSTEM_VARIABLES)
    for workflow in ctx.workflows:
        steps = ctx.steps(workflow)
        for step, scan, _ in steps.sql:
            if scan.variables:
                _texts(ctx, step.sql, scan.variables, declared)
        for node in steps.raw:
            for text in raw_texts(node):
                found = scan_text(text.value).variables
                if found:
                    _texts(ctx, text, found, declared)


def _texts(ctx: CheckContext, text: ir.Text, refs: tuple[VarRef, ...], declared: set[str]) -> None:
    for ref in refs:
        if ref.name in declared:
            continue
        close = difflib.get_close_matches(ref.name, sorted(declared), n=1)
        span = ctx.span(text, ref.start, ref.end)
        fixes: tuple[Fix, ...] = ()
        if close and span != text.span:
            fixes = (Fix(f"Use {{{close[0]}}}", (Edit(span, "{" + close[0] + "}"),)),)
        ctx.sink.add(
            "DFC510",
            span,
            f"variable {{{ref.name}}} is never declared in this file",
            hint=(f"Did you mean {{{close[0]}}}? " if close else "")
            + f"Declare it with SELECT df.setvar('{ref.name}', '<default>'); before the "
            "workflow, or set it with df.setvar before df.start.",
            fixes=fixes,
        )
