"""Formatting (``textDocument/formatting``): the same layout as ``dfc fmt``.

The server does not format on its own: it runs :func:`compiler.formatter.format_text`, the
function behind ``dfc fmt``, and answers with one edit replacing the document when the result
differs. The formatter returns text with syntax errors unchanged, so formatting a broken file
is a no-op, never a corruption.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from compiler.formatter import format_text
from lsp.positions import LineIndex


def format_document(text: str, filename: str, lines: LineIndex) -> list[lsp.TextEdit]:
    formatted = format_text(text, filename)
    if formatted == text:
        return []
    return [lsp.TextEdit(range=lines.range(0, len(text)), new_text=formatted)]
