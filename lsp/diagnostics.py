"""Publishing diagnostics: compiler diagnostics rendered as LSP ``Diagnostic`` records.

The compiler's :class:`compiler.diagnostics.Diagnostic` is data with character offsets; this is
the edge where it becomes what an editor draws as a squiggle: a UTF-16 range, an LSP severity,
the code, ``source: "dfc"``, the hint appended to the message (editors show one message, not
two), related places as ``relatedInformation`` and, for unused or unreachable code, the
``Unnecessary`` tag that makes editors fade it out.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from compiler.diagnostics import Diagnostic, Severity
from lsp.positions import LineIndex

SOURCE = "dfc"

SEVERITIES = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.INFO: lsp.DiagnosticSeverity.Information,
    Severity.HINT: lsp.DiagnosticSeverity.Hint,
}

# Codes whose range is code that does nothing: editors fade it instead of underlining it.
_UNNECESSARY = frozenset({"DFC303", "DFC502"})


def message_of(diagnostic: Diagnostic) -> str:
    if diagnostic.hint:
        return f"{diagnostic.message}\n{diagnostic.hint}"
    return diagnostic.message


def to_lsp(diagnostic: Diagnostic, lines: LineIndex, uri: str) -> lsp.Diagnostic:
    related = [
        lsp.DiagnosticRelatedInformation(
            location=lsp.Location(uri=uri, range=lines.range(r.span.start, r.span.end)),
            message=r.message,
        )
        for r in diagnostic.related
    ]
    return lsp.Diagnostic(
        range=lines.range(diagnostic.span.start, diagnostic.span.end),
        message=message_of(diagnostic),
        severity=SEVERITIES.get(diagnostic.severity, lsp.DiagnosticSeverity.Error),
        code=diagnostic.code,
        source=SOURCE,
        related_information=related or None,
        tags=[lsp.DiagnosticTag.Unnecessary] if diagnostic.code in _UNNECESSARY else None,
    )


def document_diagnostics(
    diagnostics: list[Diagnostic], lines: LineIndex, uri: str
) -> list[lsp.Diagnostic]:
    return [to_lsp(d, lines, uri) for d in diagnostics]
