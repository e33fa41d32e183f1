"""The registry of diagnostic codes: one entry per code, with its default severity and title.

Ranges: DFC1xx lexical and syntax, DFC2xx calls and arguments, DFC3xx names and results,
DFC4xx SQL inside steps, DFC5xx other semantic rules, DFC6xx portability, DFC9xx I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    severity: str
    title: str


_ENTRIES = [
    # -- internal ------------------------------------------------------------------------------
    Code("DFC000", "error", "internal compiler error"),
    # -- lexical and syntax ------------------------------------------------------------------
    Code("DFC101", "error", "unexpected token"),
    Code("DFC102", "error", "unexpected end of statement"),
    Code("DFC103", "error", "unterminated string literal"),
    Code("DFC104", "error", "unterminated dollar-quoted string"),
    Code("DFC105", "error", "unterminated block comment"),
    Code("DFC106", "error", "unexpected character"),
    Code("DFC107", "error", "psql variable in a workflow file"),
    Code("DFC108", "error", "string literals on one line must be joined with ||"),
    Code("DFC109", "error", "invalid escape in string literal"),
    Code("DFC110", "error", "value computed at run time"),
    Code("DFC111", "error", "nesting too deep"),
    Code("DFC112", "error", "empty statement body"),
    # -- calls and arguments -----------------------------------------------------------------
    Code("DFC201", "error", "unknown function"),
    Code("DFC202", "error", "too many arguments"),
    Code("DFC203", "error", "missing argument"),
    Code("DFC204", "error", "unknown named argument"),
    Code("DFC205", "error", "argument given twice"),
    Code("DFC206", "error", "argument of the wrong type"),
    Code("DFC207", "error", "invalid result name"),
    Code("DFC208", "error", "invalid JSON"),
    Code("DFC209", "error", "unsupported cast"),
    Code("DFC210", "error", "invalid argument value"),
    Code("DFC211", "warning", "management call ignored"),
    Code("DFC212", "error", "function cannot be a workflow step"),
    Code("DFC213", "warning", "result renamed"),
    Code("DFC214", "error", "positional argument after named argument"),
    Code("DFC215", "error", "if without condition result"),
    # -- names and results -------------------------------------------------------------------
    Code("DFC301", "error", "unknown result name"),
    Code("DFC302", "error", "result name not bound on every path"),
    Code("DFC303", "hint", "result name never used"),
    Code("DFC304", "error", "no such column in the named result"),
    Code("DFC305", "error", "result has no fields"),
    Code("DFC306", "warning", "result is never stored"),
    Code("DFC307", "error", "named result has no rows"),
    Code("DFC308", "error", "df.if_rows needs a SQL result"),
    Code("DFC309", "warning", "result name bound in parallel branches"),
    # -- SQL inside steps --------------------------------------------------------------------
    Code("DFC401", "error", "SQL syntax error"),
    Code("DFC402", "error", "more than one SQL statement in a step"),
    Code("DFC403", "error", "empty SQL step"),
    Code("DFC404", "error", "condition is not a complete SQL statement"),
    Code("DFC405", "error", "transaction control in a step"),
    Code("DFC406", "info", "statement runs outside a transaction"),
    Code("DFC407", "error", "positional parameter in a step"),
    # -- other semantic rules ----------------------------------------------------------------
    Code("DFC501", "error", "df.break outside a loop"),
    Code("DFC502", "warning", "unreachable step"),
    Code("DFC503", "error", "invalid cron expression"),
    Code("DFC504", "error", "unknown time zone"),
    Code("DFC505", "error", "invalid HTTP method"),
    Code("DFC506", "error", "unsupported URL scheme"),
    Code("DFC507", "error", "empty signal name"),
    Code("DFC508", "error", "negative duration"),
    Code("DFC509", "error", "timeout must be positive"),
    Code("DFC510", "warning", "undeclared variable"),
    Code("DFC511", "error", "duplicate workflow name"),
    Code("DFC512", "error", "nesting deeper than 256"),
    Code("DFC513", "error", "invalid multipart parts"),
    Code("DFC514", "error", "invalid retry settings"),
    Code("DFC515", "error", "invalid HTTP headers"),
    # -- portability -------------------------------------------------------------------------
    Code("DFC601", "warning", "pg_durable groups this expression differently"),
    Code("DFC602", "error", "dfc extension has no pg_durable equivalent"),
    Code("DFC603", "warning", "cron day of week means another day in pg_durable"),
    Code("DFC604", "error", "construct has no pg_durable form"),
    Code("DFC605", "warning", "operators written without a space"),
    # -- I/O ---------------------------------------------------------------------------------
    Code("DFC901", "error", "cannot read file"),
    Code("DFC902", "error", "file is not valid UTF-8"),
    Code("DFC903", "error", "cannot write output"),
]

CODES: dict[str, Code] = {entry.code: entry for entry in _ENTRIES}
