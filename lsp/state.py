"""Document state: derived facts cached per document URI and version.

Every open document has one :class:`DocumentState`: its text, its version, its line index and
its :class:`lsp.analysis.DocumentAnalysis`. The state for a version is computed once (when the
debounced analysis runs, or on first demand by a request) and then only read; request handlers
never re-analyse text themselves. Statement analyses are shared between documents and versions
through one :class:`lsp.analysis.StatementCache`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import PurePosixPath
from urllib.parse import unquote, urlparse

from lsp.analysis import DocumentAnalysis, StatementCache, analyse_document
from lsp.positions import UTF16, LineIndex


def filename_for(uri: str) -> str:
    """The file name the compiler sees (workflow names derive from it)."""
    parsed = urlparse(uri)
    path = unquote(parsed.path) if parsed.scheme in ("file", "") else parsed.path
    return PurePosixPath(path).name or "untitled.dsql"


@dataclass(frozen=True)
class DocumentState:
    uri: str
    version: int | None
    analysis: DocumentAnalysis
    encoding: str = UTF16

    @property
    def text(self) -> str:
        return self.analysis.text

    @cached_property
    def lines(self) -> LineIndex:
        return LineIndex(self.analysis.text, self.encoding)


class DocumentStore:
    """The latest analysed state of each open document."""

    def __init__(self, cache: StatementCache | None = None, encoding: str = UTF16) -> None:
        self.cache = cache or StatementCache()
        self.encoding = encoding  # the position encoding negotiated with the client
        self._states: dict[str, DocumentState] = {}

    def get(self, uri: str) -> DocumentState | None:
        return self._states.get(uri)

    def update(self, uri: str, version: int | None, text: str) -> DocumentState:
        """The state of ``text``; reuses the stored state when it is for the same text."""
        current = self._states.get(uri)
        if current is not None and current.text == text:
            if current.version != version:
                current = DocumentState(uri, version, current.analysis, self.encoding)
                self._states[uri] = current
            return current
        analysis = analyse_document(
            text,
            filename_for(uri),
            self.cache,
            previous=current.analysis if current is not None else None,
        )
        state = DocumentState(uri, version, analysis, self.encoding)
        self._states[uri] = state
        return state

    def close(self, uri: str) -> None:
        self._states.pop(uri, None)

    def uris(self) -> list[str]:
        return list(self._states)
