"""Decoding PostgreSQL string literals, keeping a map back to the file.

Forms (behaviour §1): ``'…'`` with ``''``; ``E'…'`` with backslash escapes; ``U&'…'`` with
Unicode escapes; ``$$…$$`` and ``$tag$…$tag$`` taken verbatim. The result of each is the
decoded value and the breaks of a :class:`compiler.ir.Text` offset map.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Breaks = list[tuple[int, int]]

_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_OCTAL = re.compile(r"[0-7]{1,3}")
_HEX = re.compile(r"[0-9A-Fa-f]{1,2}")
_DOLLAR_TAG = re.compile(r"\$([^$]*)\$")
_UNICODE = re.compile(
    r"[Uu]&'(?P<body>(?:[^']|'')*)'(?:\s*uescape\s*'(?P<escape>.)')?", re.IGNORECASE | re.DOTALL
)


class StringError(Exception):
    """A malformed escape; ``offset`` is the file offset where it starts."""

    def __init__(self, offset: int, length: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.length = length
        self.message = message
        self.hint = hint


@dataclass(slots=True)  # not frozen: a short-lived result, and frozen ones are slower to build
class Decoded:
    value: str
    breaks: Breaks
    kind: str  # "quote" | "escape" | "unicode" | "dollar"


def decode(token: str, offset: int) -> Decoded:
    """Decode one string token that starts at file offset ``offset``."""
    first = token[0]
    if first == "$":
        match = _DOLLAR_TAG.match(token)
        tag_len = match.end() if match else 2
        body = token[tag_len : len(token) - tag_len]
        return Decoded(body, [(0, offset + tag_len)], "dollar")
    if first in "Ee":
        return Decoded(*_decode_escape(token[2:-1], offset + 2), kind="escape")
    if first in "Uu":
        match = _UNICODE.fullmatch(token)
        assert match is not None  # the lexer only makes tokens of this shape
        escape = match.group("escape") or "\\"
        return Decoded(*_decode_unicode(match.group("body"), offset + 3, escape), kind="unicode")
    return Decoded(*decode_quote(token[1:-1], offset + 1), kind="quote")


def decode_quote(body: str, base: int) -> tuple[str, Breaks]:
    """The value of the body of a ``'...'`` literal that starts at file offset ``base``."""
    if "''" not in body:
        return body, [(0, base)]
    # Each '' decodes to one quote, which maps to where the '' starts; the text after it maps
    # linearly again from just past it.
    pieces = body.split("''")
    breaks: Breaks = [(0, base)]
    decoded = raw = 0
    for piece in pieces[:-1]:
        decoded += len(piece)
        raw += len(piece)
        breaks.append((decoded, base + raw))
        breaks.append((decoded + 1, base + raw + 2))
        decoded += 1
        raw += 2
    return "'".join(pieces), breaks


def _decode_escape(body: str, base: int) -> tuple[str, Breaks]:
    if "\\" not in body and "''" not in body:
        return body, [(0, base)]
    out: list[str] = []
    breaks: Breaks = [(0, base)]
    length = 0
    i = 0
    n = len(body)
    while i < n:
        ch = body[i]
        if ch == "'" and i + 1 < n and body[i + 1] == "'":
            text, consumed = "'", 2
        elif ch == "\\" and i + 1 < n:
            text, consumed = _escape_run(body, i, base)
        else:
            out.append(ch)
            length += 1
            i += 1
            continue
        breaks.append((length, base + i))
        out.append(text)
        length += len(text)
        i += consumed
        breaks.append((length, base + i))
    return "".join(out), breaks


def _escape_run(body: str, i: int, base: int) -> tuple[str, int]:
    """Decode the escape at ``body[i]``; consecutive byte escapes are decoded together.

    Octal and ``\\x`` escapes stand for bytes, as in PostgreSQL: ``E'\\303\\251'`` is one
    character, é. The bytes of a run must form valid UTF-8 and may not include zero.
    """
    first = _escape_at(body, i, base)
    if isinstance(first[0], str):
        return first[0], first[1]
    data = bytearray()
    consumed = 0
    while i + consumed + 1 < len(body) and body[i + consumed] == "\\":
        value, size = _escape_at(body, i + consumed, base)
        if not isinstance(value, bytes):
            break
        data += value
        consumed += size
    if 0 in data:
        raise StringError(
            base + i,
            consumed,
            "a string cannot contain the zero byte",
            "PostgreSQL text cannot hold the character U+0000; remove the escape.",
        )
    try:
        return data.decode("utf-8"), consumed
    except UnicodeDecodeError:
        shown = "".join(f"\\x{b:02X}" for b in data)
        raise StringError(
            base + i,
            consumed,
            f"invalid UTF-8 byte sequence {shown}",
            "Octal and \\x escapes are bytes and must together form UTF-8 (é is \\xC3\\xA9); "
            "or write the character with \\u, e.g. \\u00e9.",
        ) from None


def _escape_at(body: str, i: int, base: int) -> tuple[str | bytes, int]:
    """What an escape at ``body[i]`` (a backslash) stands for, and its length."""
    nxt = body[i + 1]
    if nxt in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[nxt], 2
    if nxt in "01234567":
        match = _OCTAL.match(body, i + 1)
        assert match is not None
        return bytes([int(match.group(), 8) & 0xFF]), 1 + len(match.group())
    if nxt == "x":
        match = _HEX.match(body, i + 2)
        if match:
            return bytes([int(match.group(), 16)]), 2 + len(match.group())
        return "x", 2
    if nxt in "uU":
        value, size = _hex_escape(body, i, base)
        if 0xD800 <= value <= 0xDBFF and body.startswith(("\\u", "\\U"), i + size):
            low, low_size = _hex_escape(body, i + size, base)
            if 0xDC00 <= low <= 0xDFFF:
                # A surrogate pair, which PostgreSQL combines into one character.
                combined = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                return chr(combined), size + low_size
        return _code_point(value, base + i, size), size
    return nxt, 2


def _hex_escape(body: str, i: int, base: int) -> tuple[int, int]:
    """The value and length of a ``\\uXXXX`` or ``\\UXXXXXXXX`` escape at ``body[i]``."""
    nxt = body[i + 1]
    width = 4 if nxt == "u" else 8
    digits = body[i + 2 : i + 2 + width]
    if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise StringError(
            base + i,
            2 + len(digits),
            f"invalid Unicode escape: \\{nxt} needs {width} hex digits",
            f"Write exactly {width} hex digits after \\{nxt}, e.g. "
            + ("\\u00e9 for é." if nxt == "u" else "\\U0001F600 for 😀.")
            + " For a literal backslash write \\\\.",
        )
    return int(digits, 16), 2 + width


def _code_point(value: int, offset: int, length: int) -> str:
    if value == 0 or value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        raise StringError(
            offset,
            length,
            f"invalid Unicode code point U+{value:04X}",
            "A Unicode escape names a character from U+0001 to U+10FFFF; a surrogate "
            "(U+D800-U+DFFF) is only valid as a high surrogate directly followed by a low "
            "one. Write characters above U+FFFF as one escape, e.g. \\U0001F600.",
        )
    return chr(value)


def _decode_unicode(body: str, base: int, esc: str = "\\") -> tuple[str, Breaks]:
    """Decode a U&'...' body whose escape character is ``esc`` (``\\`` unless UESCAPE)."""
    text, breaks = decode_quote(body, base) if "''" in body else (body, [(0, base)])
    if esc not in text:
        return text, breaks
    # Unicode escapes are rare: decode the quote-undone text again, mapping through ``breaks``.
    out: list[str] = []
    new_breaks: Breaks = [(0, base)]
    length = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != esc:
            out.append(ch)
            length += 1
            i += 1
            continue
        offset = _map(breaks, i)
        if text.startswith(esc + esc, i):
            char, consumed = esc, 2
        elif i + 1 < len(text) and text[i + 1] == "+":
            digits = text[i + 2 : i + 8]
            if len(digits) != 6 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise StringError(
                    offset,
                    min(8, len(text) - i),
                    f"invalid Unicode escape: {esc}+ needs 6 hex digits",
                    f"Write exactly 6 hex digits after {esc}+, e.g. {esc}+01F600; the escape "
                    f"character itself is written {esc}{esc}.",
                )
            char, consumed = _code_point(int(digits, 16), offset, 8), 8
        else:
            digits = text[i + 1 : i + 5]
            if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise StringError(
                    offset,
                    min(5, len(text) - i),
                    f"invalid Unicode escape: {esc} needs 4 hex digits",
                    f"In U&'...' {esc} starts an escape: write 4 hex digits ({esc}00e9), "
                    f"{esc}+ and 6 digits, or {esc}{esc} for the character itself.",
                )
            char, consumed = _code_point(int(digits, 16), offset, 5), 5
        new_breaks.append((length, offset))
        out.append(char)
        length += 1
        i += consumed
        new_breaks.append((length, _map(breaks, i)))
    return "".join(out), new_breaks


def _map(breaks: Breaks, index: int) -> int:
    decoded, offset = breaks[0]
    for d, o in breaks:
        if d > index:
            break
        decoded, offset = d, o
    return offset + (index - decoded)
