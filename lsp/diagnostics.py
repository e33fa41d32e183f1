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
from lsp.analysis import DocumentAnalysis
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


def to_lsp(diagnostic: Diagnostic, lines: LineIndex, uri: str, shift: int = 0) -> lsp.Diagnostic:
    """``diagnostic`` as LSP data; its offsets plus ``shift`` are document offsets.

    Other places it mentions are ``related`` spans, shifted like its own range.
    """
    message = message_of(diagnostic)
    related = [
        lsp.DiagnosticRelatedInformation(
            location=lsp.Location(
                uri=uri, range=lines.range(r.span.start + shift, r.span.end + shift)
            ),
            message=r.message,
        )
        for r in diagnostic.related
    ]
    return lsp.Diagnostic(
        range=lines.range(diagnostic.span.start + shift, diagnostic.span.end + shift),
        message=message,
        severity=SEVERITIES.get(diagnostic.severity, lsp.DiagnosticSeverity.Error),
        code=diagnostic.code,
        source=SOURCE,
        related_information=related or None,
        tags=[lsp.DiagnosticTag.Unnecessary] if diagnostic.code in _UNNECESSARY else None,
    )


def document_diagnostics(
    diagnostics: list[Diagnostic], lines: LineIndex, uri: str, shift: int = 0
) -> list[lsp.Diagnostic]:
    return [to_lsp(d, lines, uri, shift) for d in diagnostics]


def publishable(analysis: DocumentAnalysis, lines: LineIndex, uri: str) -> list[lsp.Diagnostic]:
    """The document's diagnostics for ``publishDiagnostics``, converting only what moved.

    A statement's LSP diagnostics depend only on its analysis and on the line and column where
    it starts; they are kept on the statement analysis and reused while those stay the same, so
    typing in one statement converts that statement's diagnostics alone.
    """
    out: list[lsp.Diagnostic] = []
    for placed in analysis.statements:
        own = placed.analysis.diagnostics
        if not own:
            continue
        start = lines.position(placed.start)
        key = (uri, start.line, start.character)
        cached = placed.analysis.derived.get("lsp_diagnostics")
        if cached is None or cached[0] != key:
            converted = document_diagnostics(list(own), lines, uri, placed.shift)
            cached = (key, converted)
            placed.analysis.derived["lsp_diagnostics"] = cached
        out.extend(cached[1])
    out.extend(document_diagnostics(analysis.file_diagnostics, lines, uri))
    return out
