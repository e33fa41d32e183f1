"""Positions: character offsets ↔ LSP line/character pairs in the negotiated encoding.

The compiler counts offsets in Python characters (code points); the Language Server Protocol
counts columns in UTF-16 code units unless client and server agree on UTF-8 or UTF-32 at
initialisation, so a character outside the Basic Multilingual Plane (an emoji in a SQL comment)
is one offset but two UTF-16 columns (four UTF-8 ones). :class:`LineIndex` converts both ways
for one text; lines that are pure ASCII (almost all) take a fast path.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from lsprotocol import types as lsp

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"


def _units(text: str, encoding: str) -> int:
    """How many code units of ``encoding`` ``text`` takes."""
    if encoding == UTF32:
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8"))
    return len(text.encode("utf-16-le")) // 2


def _char_units(char: str, encoding: str) -> int:
    code = ord(char)
    if encoding == UTF32:
        return 1
    if encoding == UTF8:
        return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
    return 2 if code > 0xFFFF else 1


@dataclass(frozen=True)
class LineIndex:
    """Where each line of a text starts, and which lines need UTF-16 counting."""

    text: str
    encoding: str = UTF16
    _starts: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        starts = [0]
        find = self.text.find
        pos = find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        object.__setattr__(self, "_starts", tuple(starts))

    @property
    def line_count(self) -> int:
        return len(self._starts)

    def line_start(self, line: int) -> int:
        line = max(0, min(line, len(self._starts) - 1))
        return self._starts[line]

    def line_end(self, line: int) -> int:
        """The offset of the end of a 0-based line, before its newline."""
        if line + 1 < len(self._starts):
            return self._starts[line + 1] - 1
        return len(self.text)

    def position(self, offset: int) -> lsp.Position:
        """The LSP position of a character offset (clamped to the text)."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._starts, offset) - 1
        start = self._starts[line]
        prefix = self.text[start:offset]
        column = len(prefix) if prefix.isascii() else _units(prefix, self.encoding)
        return lsp.Position(line=line, character=column)

    def one_based(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) counting characters, as ``dfc check`` prints positions."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._starts, offset) - 1
        return line + 1, offset - self._starts[line] + 1

    def range(self, start: int, end: int) -> lsp.Range:
        return lsp.Range(start=self.position(start), end=self.position(max(start, end)))

    def offset(self, position: lsp.Position) -> int:
        """The character offset of an LSP position; out-of-range positions are clamped."""
        if position.line < 0:
            return 0
        if position.line >= len(self._starts):
            return len(self.text)
        start = self._starts[position.line]
        end = self.line_end(position.line)
        line = self.text[start:end]
        wanted = max(0, position.character)
        if line.isascii():
            return start + min(wanted, len(line))
        units = 0
        for index, char in enumerate(line):
            if units >= wanted:
                return start + index
            units += _char_units(char, self.encoding)
        return end
