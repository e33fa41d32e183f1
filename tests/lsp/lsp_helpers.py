"""Helpers for unit tests of the pure feature functions: documents with cursor markers."""

from __future__ import annotations

from lsprotocol import types as lsp

from lsp.state import DocumentState, DocumentStore

CURSOR = "│"


def state_of(
    text: str, uri: str = "file:///work/test.dsql", store: DocumentStore | None = None
) -> DocumentState:
    return (store or DocumentStore()).update(uri, 1, text)


def with_cursor(
    marked: str, uri: str = "file:///work/test.dsql"
) -> tuple[DocumentState, lsp.Position]:
    """The state of ``marked`` without its ``│`` and the LSP position where it was."""
    offset = marked.index(CURSOR)
    text = marked.replace(CURSOR, "", 1)
    state = state_of(text, uri)
    return state, state.lines.position(offset)


def position(
    state: DocumentState, needle: str, delta: int = 0, occurrence: int = 0
) -> lsp.Position:
    index = -1
    for _ in range(occurrence + 1):
        index = state.text.index(needle, index + 1)
    return state.lines.position(index + delta)


def covered(state: DocumentState, rng: lsp.Range) -> str:
    return state.text[state.lines.offset(rng.start) : state.lines.offset(rng.end)]
