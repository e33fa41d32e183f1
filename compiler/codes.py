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
    # -- I/O ---------------------------------------------------------------------------------
    Code("DFC901", "error", "cannot read file"),
    Code("DFC902", "error", "file is not valid UTF-8"),
]

CODES: dict[str, Code] = {entry.code: entry for entry in _ENTRIES}
