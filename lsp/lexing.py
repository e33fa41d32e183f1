"""A fast, total scanner for .dsql text: strings, comments, punctuation and words.

The editor needs lexical facts on every keystroke, often for text that does not parse yet:
where statements end (top-level ``;``), whether the cursor is inside a string or a comment,
how many parentheses are open before it. The compiler's parser answers these only for text it
can parse, so this module scans with PostgreSQL's lexical rules (``'…'`` with ``''``,
``E'…'``, ``$tag$…$tag$``, ``--`` and nested ``/* */``) using a handful of regular
expressions. It never raises: an unterminated string or comment runs to the end of the text,
exactly as the compiler's lexer treats it, so statement boundaries agree with ``dfc check``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

# Runs of plain code: everything up to the next quote, dollar, comment start or bracket.
_PLAIN = re.compile(r"[^'$\-/;()]+")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_QUOTE_BODY = re.compile(r"(?:[^']|'')*'")
_ESCAPE_BODY = re.compile(r"(?:[^'\\]|\\[\s\S]|'')*'")
_BLOCK_PIECE = re.compile(r"/\*|\*/")


@dataclass(frozen=True, slots=True)
class Lexeme:
    """One piece of text: ``kind`` is string, comment, semicolon, lpar or rpar."""

    kind: str
    start: int
    end: int
    closed: bool = True
    opener: str = ""  # strings: the opening delimiter (', E', $tag$)

    @property
    def closer(self) -> str:
        """The text that would close an unterminated string or comment."""
        if self.kind == "comment":
            return "*/" if self.opener == "/*" else "\n"
        if self.opener.startswith("$"):
            return self.opener
        return "'"


def _ident_before(text: str, index: int) -> bool:
    if index == 0:
        return False
    char = text[index - 1]
    return char.isalnum() or char in "_$" or ord(char) >= 0x80


def _block_end(text: str, start: int) -> tuple[int, bool]:
    depth = 0
    pos = start
    while True:
        match = _BLOCK_PIECE.search(text, pos)
        if match is None:
            return len(text), False
        depth += 1 if match.group() == "/*" else -1
        pos = match.end()
        if depth == 0:
            return pos, True


_PUNCT = {";": "semicolon", "(": "lpar", ")": "rpar"}


@lru_cache(maxsize=2048)
def scan(text: str) -> tuple[Lexeme, ...]:
    """The strings, comments, semicolons and parentheses of ``text`` in order (cached)."""
    return tuple(lex(text, 0))


def lex(text: str, pos: int) -> Iterator[Lexeme]:
    """Lexemes of ``text`` from ``pos`` on, which must be outside any string or comment."""
    n = len(text)
    plain = _PLAIN.match
    while pos < n:
        skipped = plain(text, pos)
        if skipped is not None:
            pos = skipped.end()
            if pos >= n:
                break
        char = text[pos]
        kind = _PUNCT.get(char)
        if kind is not None:
            yield Lexeme(kind, pos, pos + 1)
            pos += 1
        elif char == "'":
            start, opener = pos, "'"
            body = _QUOTE_BODY
            if pos > 0 and text[pos - 1] in "EeUu&":
                prefix_start = pos - 1
                if text[prefix_start] == "&" and pos > 1 and text[pos - 2] in "Uu":
                    prefix_start = pos - 2
                if text[prefix_start] != "&" and not _ident_before(text, prefix_start):
                    start, opener = prefix_start, text[prefix_start : pos + 1]
                    body = _ESCAPE_BODY if opener[0] in "Ee" else _QUOTE_BODY
            tail = body.match(text, pos + 1)
            end = n if tail is None else tail.end()
            yield Lexeme("string", start, end, tail is not None, opener)
            pos = end
        elif char == "$":
            tag = _DOLLAR_TAG.match(text, pos)
            if tag is None or _ident_before(text, pos):
                pos += 1
                continue
            opener = tag.group()
            close = text.find(opener, tag.end())
            end = n if close < 0 else close + len(opener)
            yield Lexeme("string", pos, end, close >= 0, opener)
            pos = end
        elif text.startswith("--", pos):
            end = text.find("\n", pos)
            end = n if end < 0 else end
            yield Lexeme("comment", pos, end, True, "--")
            pos = end
        elif text.startswith("/*", pos):
            end, closed = _block_end(text, pos)
            yield Lexeme("comment", pos, end, closed, "/*")
            pos = end
        else:
            pos += 1


def statement_ranges(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into statement chunks ``[start, end)`` covering it completely.

    Each chunk ends just after its ``;`` (the last one at the end of the text), so leading
    blank lines and comments belong to the statement they precede, and an edit inside one
    statement leaves the text of every other chunk unchanged.
    """
    return _ranges_from(text, 0, [], None)


def _ranges_from(
    text: str,
    start: int,
    ranges: list[tuple[int, int]],
    stop: Callable[[int], bool] | None,
) -> list[tuple[int, int]]:
    for lexeme in lex(text, start):
        if lexeme.kind == "semicolon":
            ranges.append((start, lexeme.end))
            start = lexeme.end
            if stop is not None and stop(start):
                return ranges
    if start < len(text) or not ranges:
        ranges.append((start, len(text)))
    return ranges


def _common_prefix(a: str, b: str) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # binary search on slice equality: memcmp speed, O(log n) slices
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def update_ranges(old: str, old_ranges: list[tuple[int, int]], new: str) -> list[tuple[int, int]]:
    """:func:`statement_ranges` of ``new``, rescanning only around what changed since ``old``.

    Chunks that end before the first changed character are kept. Scanning resumes at the start
    of the first changed chunk and stops at the first statement boundary after the change from
    which the rest of the text is identical to ``old`` and was a boundary there too: the scanner
    is at top level at every boundary, so everything after it lexes as it did before.
    """
    if old == new:
        return list(old_ranges)
    prefix = _common_prefix(old, new)
    suffix = _common_suffix(old, new, min(len(old), len(new)) - prefix)
    delta = len(new) - len(old)
    kept: list[tuple[int, int]] = []
    index = 0
    while index < len(old_ranges) and old_ranges[index][1] < prefix:
        kept.append(old_ranges[index])
        index += 1
    resume = kept[-1][1] if kept else 0
    old_ends = {end: i for i, (_, end) in enumerate(old_ranges)}
    unchanged_from = len(new) - suffix

    def stop(boundary: int) -> bool:
        return boundary >= unchanged_from and (boundary - delta) in old_ends

    ranges = _ranges_from(new, resume, kept, stop)
    last_end = ranges[-1][1]
    if last_end < len(new) and stop(last_end):
        for start, end in old_ranges[old_ends[last_end - delta] + 1 :]:
            ranges.append((start + delta, end + delta))
    return ranges


def lexeme_at(lexemes: tuple[Lexeme, ...], offset: int) -> Lexeme | None:
    """The string or comment containing ``offset`` (strictly after its opening delimiter)."""
    lo, hi = 0, len(lexemes)
    while lo < hi:
        mid = (lo + hi) // 2
        if lexemes[mid].start < offset:
            lo = mid + 1
        else:
            hi = mid
    index = lo - 1
    if index < 0:
        return None
    lexeme = lexemes[index]
    if lexeme.kind not in ("string", "comment"):
        return None
    inside_end = lexeme.end if not lexeme.closed else lexeme.end - len(lexeme.closer)
    if lexeme.kind == "comment" and lexeme.opener == "--":
        inside_end = lexeme.end
    if lexeme.start + len(lexeme.opener) <= offset <= inside_end:
        return lexeme
    return None


def open_parens(lexemes: tuple[Lexeme, ...], start: int, offset: int) -> int:
    """How many ``(`` are open between ``start`` and ``offset``."""
    depth = 0
    for lexeme in lexemes:
        if lexeme.start >= offset:
            break
        if lexeme.start < start:
            continue
        if lexeme.kind == "lpar":
            depth += 1
        elif lexeme.kind == "rpar":
            depth = max(0, depth - 1)
    return depth
