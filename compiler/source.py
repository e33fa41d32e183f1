"""Source files and spans: turning offsets into 1-based line/column positions.

Positions are data throughout the compiler: every IR node and every diagnostic carries a
:class:`Span`; rendering to ``file:line:col`` happens only at the edges (CLI, LSP).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from compiler.frozen import quick_init


@quick_init
@dataclass(frozen=True, slots=True)
class Span:
    """A half-open range of character offsets with its 1-based line/column bounds.

    ``end_line``/``end_column`` point just past the last character, as LSP ranges do.
    """

    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int

    def to_json(self) -> dict[str, int]:
        return {
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
        }


@dataclass(frozen=True)
class SourceFile:
    """The text of one ``.dsql`` file and an index of where its lines start."""

    name: str
    text: str
    _line_starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts = [0]
        find = self.text.find
        pos = find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        object.__setattr__(self, "_line_starts", tuple(starts))

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset; columns count characters."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def span(self, start: int, end: int) -> Span:
        line, column = self.position(start)
        end_line, end_column = self.position(max(start, end))
        return Span(start, max(start, end), line, column, end_line, end_column)

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        if line < 1 or line > len(self._line_starts):
            return ""
        begin = self._line_starts[line - 1]
        stop = self._line_starts[line] - 1 if line < len(self._line_starts) else len(self.text)
        return self.text[begin:stop].rstrip("\r")

    @property
    def line_starts(self) -> tuple[int, ...]:
        """The offset where each line starts (the first is 0)."""
        return self._line_starts

    @property
    def line_count(self) -> int:
        return len(self._line_starts)
