"""SQL inside steps (DFC4xx): parsed with the real PostgreSQL parser, errors at their exact place.

Each SQL step's text has its ``$name``/``{var}`` references replaced by same-length
placeholders (:func:`compiler.refs.scan_sql`) and goes to pglast; a syntax error's offset in that
text is an offset in the decoded literal, which :class:`compiler.ir.Text` maps back to the file.
Also found here: several statements in one step, empty steps, transaction control, ``$1``
parameters, conditions written as bare expressions (a pg_durable documentation mistake), and
statements that cannot run inside a transaction block (reported as information; the plan marks
them ``at_least_once``).
"""

from __future__ import annotations

import re

from compiler import ir
from compiler.checker.context import CheckContext
from compiler.diagnostics import Edit, Fix
from compiler.refs import Scan
from compiler.sqlshape import Shape, analyse

_NEAR = re.compile(r'at or near "((?:[^"]|"")*)"')


def check(ctx: CheckContext) -> None:
    for workflow in ctx.workflows:
        for node, scan, is_condition in ctx.steps(workflow).sql:
            shape = analyse(scan.masked)
            # Most steps are one statement that can run in a transaction, with nothing to say.
            if (
                shape.statements != 1
                or shape.error is not None
                or shape.transaction_control
                or not shape.transactional
                or scan.params
            ):
                _check_step(ctx, node, scan, shape, is_condition)


def _check_step(
    ctx: CheckContext, node: ir.Sql, scan: Scan, shape: Shape, is_condition: bool
) -> None:
    text = node.sql
    if shape.error is not None:
        if is_condition and analyse("SELECT " + scan.masked).error is None:
            at = text.file_offset(0)
            ctx.sink.add(
                "DFC404",
                node.sql.span,
                "a condition must be a complete SQL statement: PostgreSQL rejects "
                f"{_clip(text.value)!r} on its own",
                hint="Write the condition as a query, e.g. 'SELECT $batch.done'.",
                fixes=(Fix("Add SELECT", (Edit(ctx.source.span(at, at), "SELECT "),)),),
            )
            return
        near = _NEAR.search(shape.error)
        if shape.error_offset >= len(text.value.rstrip()) or near is None:
            # "at end of input": point just past the statement (the closing quote).
            at = text.file_offset(len(text.value))
            span = ctx.source.span(at, at + 1)
        else:
            start = shape.error_offset
            end = min(start + max(len(near.group(1).replace('""', '"')), 1), len(text.value))
            span = ctx.span(text, start, end)
        ctx.sink.add(
            "DFC401",
            span,
            f"SQL syntax error: {shape.error}",
            hint=_syntax_hint(text.value, scan.masked, shape.error_offset),
        )
        return
    if shape.statements == 0:
        ctx.sink.add(
            "DFC403",
            node.sql.span,
            "this SQL step has no statement",
            hint="Write the SQL to run, e.g. 'SELECT 1'.",
        )
        return
    if shape.statements > 1:
        second = shape.second_offset or 0
        while second < len(text.value) and text.value[second].isspace():
            second += 1
        ctx.sink.add(
            "DFC402",
            ctx.span(text, second, len(text.value.rstrip())),
            f"a SQL step runs exactly one statement; this one has {shape.statements}",
            hint="Split the statements into steps joined with ~>, so each one is checkpointed.",
        )
        return
    if shape.transaction_control:
        ctx.sink.add(
            "DFC405",
            node.sql.span,
            "transaction control statements cannot be workflow steps",
            hint="Each SQL step already runs in its own transaction, committed together with "
            "its checkpoint; use a sequence (~>) for ordering.",
        )
    for offset in scan.params:
        ctx.sink.add(
            "DFC407",
            ctx.span(text, offset, _param_end(text.value, offset)),
            "positional parameters such as $1 have no value in a workflow step",
            hint="Refer to earlier results by name ($name, $name.column) or to variables ({var}).",
        )
    if not shape.transactional:
        ctx.sink.add(
            "DFC406",
            node.sql.span,
            f"{shape.not_transactional_because} cannot run inside a transaction block, so this "
            "step runs at least once: after a crash it may run again",
            hint="Make the statement safe to repeat (IF NOT EXISTS, idempotent procedures).",
        )


def _param_end(text: str, offset: int) -> int:
    end = offset + 1
    while end < len(text) and text[end].isdigit():
        end += 1
    return end


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


def _syntax_hint(text: str, masked: str, offset: int) -> str | None:
    if text != masked and text[offset : offset + 1] in ("$", "{"):
        return "The reference here is replaced by a value before the statement runs."
    return None
