"""Document symbols (outline) and workspace symbols (``#`` search across .dsql files).

A document's outline lists its workflows (named as ``dfc check`` names them), each with the
result names it binds, and its variables. Workspace symbols search the same symbols in every
``.dsql`` file under the workspace folders; files are read from disk (or taken from the editor
when open) and analysed through the shared statement cache, remembered by modification time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types as lsp

from lsp.analysis import DocumentAnalysis, StatementCache, analyse_document
from lsp.names import occurrences
from lsp.positions import LineIndex

MAX_FILES = 2000


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    kind: lsp.SymbolKind
    start: int
    end: int
    select_start: int
    select_end: int
    container: str | None = None
    children: tuple[Symbol, ...] = ()


def symbols(analysis: DocumentAnalysis) -> list[Symbol]:
    """The outline of one analysed document, at document offsets."""
    out: list[Symbol] = []
    for placed, workflow, name in analysis.workflows:
        children = []
        seen: set[str] = set()
        for occurrence in occurrences(placed.analysis):
            if occurrence.kind != "bind" or occurrence.name in seen:
                continue
            seen.add(occurrence.name)
            node = occurrence.node
            start = placed.to_doc(node.span.start if node is not None else occurrence.start)
            end = placed.to_doc(node.span.end if node is not None else occurrence.end)
            children.append(
                Symbol(
                    f"${occurrence.name}",
                    lsp.SymbolKind.Variable,
                    start,
                    end,
                    placed.to_doc(occurrence.start),
                    placed.to_doc(occurrence.end),
                    name,
                )
            )
        select = workflow.label.span if workflow.label is not None else workflow.span
        out.append(
            Symbol(
                name,
                lsp.SymbolKind.Function,
                placed.to_doc(workflow.span.start),
                placed.to_doc(workflow.span.end),
                placed.to_doc(select.start),
                placed.to_doc(select.end),
                None,
                tuple(children),
            )
        )
    for name, (placed, setvar) in analysis.variables.items():
        out.append(
            Symbol(
                f"{{{name}}}",
                lsp.SymbolKind.Constant,
                placed.to_doc(setvar.span.start),
                placed.to_doc(setvar.span.end),
                placed.to_doc(setvar.name.span.start),
                placed.to_doc(setvar.name.span.end),
            )
        )
    out.sort(key=lambda s: s.start)
    return out


def _document_symbol(symbol: Symbol, lines: LineIndex) -> lsp.DocumentSymbol:
    return lsp.DocumentSymbol(
        name=symbol.name,
        kind=symbol.kind,
        range=lines.range(symbol.start, symbol.end),
        selection_range=lines.range(symbol.select_start, symbol.select_end),
        children=[_document_symbol(c, lines) for c in symbol.children] or None,
    )


def document_symbols(analysis: DocumentAnalysis, lines: LineIndex) -> list[lsp.DocumentSymbol]:
    return [_document_symbol(s, lines) for s in symbols(analysis)]


def _flatten(items: list[Symbol]) -> list[Symbol]:
    flat: list[Symbol] = []
    for item in items:
        flat.append(item)
        flat.extend(item.children)
    return flat


def _matches(query: str, name: str) -> bool:
    """Case-insensitive subsequence match, as editors' fuzzy symbol search expects."""
    name = name.lower()
    position = 0
    for char in query.lower():
        position = name.find(char, position) + 1
        if position == 0:
            return False
    return True


class WorkspaceIndex:
    """Analyses of the workspace's .dsql files, refreshed when a file's mtime changes."""

    def __init__(self, cache: StatementCache) -> None:
        self._cache = cache
        self._files: dict[str, tuple[float, DocumentAnalysis, LineIndex]] = {}

    def _analysed(self, path: Path) -> tuple[DocumentAnalysis, LineIndex] | None:
        key = str(path)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        known = self._files.get(key)
        if known is not None and known[0] == mtime:
            return known[1], known[2]
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        analysis = analyse_document(text, path.name, self._cache)
        lines = LineIndex(text)
        self._files[key] = (mtime, analysis, lines)
        return analysis, lines

    def search(
        self,
        query: str,
        roots: list[Path],
        open_documents: dict[str, tuple[DocumentAnalysis, LineIndex]],
        uri_of: Callable[[Path], str],
    ) -> list[lsp.WorkspaceSymbol]:
        """Symbols matching ``query`` in open documents and in .dsql files under ``roots``."""
        results: list[lsp.WorkspaceSymbol] = []
        seen: set[str] = set()

        def add(uri: str, analysis: DocumentAnalysis, lines: LineIndex) -> None:
            for symbol in _flatten(symbols(analysis)):
                if _matches(query, symbol.name):
                    results.append(
                        lsp.WorkspaceSymbol(
                            name=symbol.name,
                            kind=symbol.kind,
                            location=lsp.Location(
                                uri, lines.range(symbol.select_start, symbol.select_end)
                            ),
                            container_name=symbol.container,
                        )
                    )

        for uri, (analysis, lines) in open_documents.items():
            seen.add(uri)
            add(uri, analysis, lines)
        count = 0
        for root in roots:
            for directory, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "node_modules"]
                for filename in filenames:
                    if not filename.endswith(".dsql"):
                        continue
                    count += 1
                    if count > MAX_FILES:
                        return results
                    path = Path(directory) / filename
                    uri = uri_of(path)
                    if uri in seen:
                        continue
                    found = self._analysed(path)
                    if found is not None:
                        add(uri, *found)
        return results
