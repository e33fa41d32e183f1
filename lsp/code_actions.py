"""Code actions (``textDocument/codeAction``): quick fixes for the diagnostics at the cursor.

Every :class:`compiler.diagnostics.Fix` the compiler attaches to a diagnostic becomes a quick
fix, so the editor offers exactly what ``dfc check`` suggests. The server adds two families of
its own, computed from the same cached facts: *did you mean* (an unknown ``$name`` or
``df.*`` function close to a known one) and *add ``?``* (make a reference that may be unbound
null-safe).
"""

from __future__ import annotations

import difflib
import re

from lsprotocol import types as lsp

from compiler.catalogue import load as load_catalogue
from compiler.diagnostics import Diagnostic
from lsp.names import occurrence_at, occurrences
from lsp.state import DocumentState

_LAST_IDENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\Z")
# Codes about a `$name` reference that may be unbound on some path.
_NULL_SAFE_CODES = frozenset({"DFC301", "DFC302"})
_UNKNOWN_NAME_CODES = frozenset({"DFC301", "DFC302"})


def _same(diagnostic: Diagnostic, wanted: lsp.Diagnostic, state: DocumentState) -> bool:
    if wanted.code is not None and str(wanted.code) != diagnostic.code:
        return False
    return state.lines.range(diagnostic.span.start, diagnostic.span.end) == wanted.range


def _action(
    title: str, uri: str, edits: list[lsp.TextEdit], diagnostic: lsp.Diagnostic, preferred: bool
) -> lsp.CodeAction:
    return lsp.CodeAction(
        title=title,
        kind=lsp.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        edit=lsp.WorkspaceEdit(changes={uri: edits}),
        is_preferred=preferred or None,
    )


def code_actions(
    state: DocumentState, requested: lsp.Range, context_diagnostics: list[lsp.Diagnostic]
) -> list[lsp.CodeAction]:
    actions: list[lsp.CodeAction] = []
    lines = state.lines
    for wanted in context_diagnostics:
        if wanted.source not in (None, "dfc"):
            continue
        for diagnostic in state.analysis.diagnostics:
            if not _same(diagnostic, wanted, state):
                continue
            offered: set[str] = set()
            for index, fix in enumerate(diagnostic.fixes):
                edits = [
                    lsp.TextEdit(lines.range(e.span.start, e.span.end), e.text) for e in fix.edits
                ]
                offered.add(repr(edits))
                actions.append(_action(fix.title, state.uri, edits, wanted, index == 0))
            for extra in _extra_fixes(state, diagnostic, wanted):
                # The compiler's own fix wins over an equivalent one of ours.
                if extra.edit is None or extra.edit.changes is None:
                    continue
                key = repr(extra.edit.changes[state.uri])
                if key not in offered:
                    offered.add(key)
                    actions.append(extra)
    return actions


def _extra_fixes(
    state: DocumentState, diagnostic: Diagnostic, wanted: lsp.Diagnostic
) -> list[lsp.CodeAction]:
    lines = state.lines
    if diagnostic.code == "DFC201":
        text = state.text[diagnostic.span.start : diagnostic.span.end]
        match = _LAST_IDENT.search(text)
        if match is None:
            return []
        names = [f.name for f in load_catalogue().functions.values() if f.category != "management"]
        start = diagnostic.span.start + match.start(1)
        return [
            _action(
                f"Did you mean df.{close}?",
                state.uri,
                [lsp.TextEdit(lines.range(start, start + len(match.group(1))), close)],
                wanted,
                False,
            )
            for close in difflib.get_close_matches(match.group(1).lower(), names, n=3)
        ]
    placed = state.analysis.statement_at(diagnostic.span.start)
    if placed is None:
        return []
    local = placed.to_local(diagnostic.span.start)
    occurrence = None
    for candidate in occurrences(placed.analysis):
        if candidate.kind == "ref" and local <= candidate.start <= placed.to_local(
            diagnostic.span.end
        ):
            occurrence = candidate
            break
    if occurrence is None:
        occurrence = occurrence_at(placed.analysis, local)
    if occurrence is None or occurrence.kind != "ref":
        return []
    out: list[lsp.CodeAction] = []
    if diagnostic.code in _UNKNOWN_NAME_CODES:
        bound = sorted({o.name for o in occurrences(placed.analysis) if o.kind == "bind"})
        for close in difflib.get_close_matches(occurrence.name, bound, n=3):
            if close == occurrence.name:
                continue
            start, end = placed.to_doc(occurrence.start), placed.to_doc(occurrence.end)
            out.append(
                _action(
                    f"Did you mean ${close}?",
                    state.uri,
                    [lsp.TextEdit(lines.range(start, end), close)],
                    wanted,
                    False,
                )
            )
    if diagnostic.code in _NULL_SAFE_CODES and occurrence.in_sql:
        end = occurrence.end
        if occurrence.column is not None:
            end = occurrence.column_start + len(occurrence.column)
        doc_end = placed.to_doc(end)
        if state.text[doc_end : doc_end + 1] != "?":
            spelled = f"${occurrence.name}" + (f".{occurrence.column}" if occurrence.column else "")
            out.append(
                _action(
                    f"Make {spelled} null-safe ({spelled}?)",
                    state.uri,
                    [lsp.TextEdit(lines.range(doc_end, doc_end), "?")],
                    wanted,
                    False,
                )
            )
    return out
