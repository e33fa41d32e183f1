"""Diagnostics: errors, warnings and hints as data, with a code and a position.

Every problem the compiler finds is a :class:`Diagnostic`; nothing raises past the compiler's
public functions. Codes are registered once in :mod:`compiler.codes` with their default
severity. Rendering (rich text, JSON, LSP) happens at the edges, in :mod:`compiler.render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from compiler.codes import CODES
from compiler.frozen import quick_init
from compiler.source import Span


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    HINT = "hint"


@quick_init
@dataclass(frozen=True, slots=True)
class Edit:
    """Replace ``span`` with ``text``: one piece of a quick fix."""

    span: Span
    text: str


@quick_init
@dataclass(frozen=True, slots=True)
class Fix:
    """A quick fix offered with a diagnostic (LSP code action, ``--fix`` later)."""

    title: str
    edits: tuple[Edit, ...]


@quick_init
@dataclass(frozen=True, slots=True)
class Related:
    """Another place that explains a diagnostic, e.g. where a name was bound."""

    span: Span
    message: str


@quick_init
@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span
    hint: str | None = None
    fixes: tuple[Fix, ...] = ()
    related: tuple[Related, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


@dataclass
class DiagnosticSink:
    """Collects diagnostics for one file, in the order they are found."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(
        self,
        code: str,
        span: Span,
        message: str,
        *,
        hint: str | None = None,
        severity: Severity | None = None,
        fixes: tuple[Fix, ...] = (),
        related: tuple[Related, ...] = (),
    ) -> Diagnostic:
        diagnostic = Diagnostic(
            code=code,
            severity=severity or Severity(CODES[code].severity),
            message=message,
            span=span,
            hint=hint,
            fixes=fixes,
            related=related,
        )
        self.items.append(diagnostic)
        return diagnostic

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=lambda d: (d.span.start, d.span.end, d.code))
