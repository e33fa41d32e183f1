"""PostgreSQL string literals: decoded values, offset maps back to the file, and errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import ir
from compiler.source import SourceFile
from compiler.strings import StringError, decode


def text_of(token: str, offset: int = 0) -> ir.Text:
    decoded = decode(token, offset)
    source = SourceFile("t.dsql", " " * offset + token)
    return ir.Text(
        value=decoded.value,
        span=source.span(offset, offset + len(token)),
        breaks=tuple(decoded.breaks),
    )


@pytest.mark.parametrize(
    ("token", "value", "kind"),
    [
        ("'plain'", "plain", "quote"),
        ("''", "", "quote"),
        ("'it''s'", "it's", "quote"),
        ("''''", "'", "quote"),
        ("'C:\\temp\\'", "C:\\temp\\", "quote"),  # backslash is ordinary in '...'
        ("E'a\\nb'", "a\nb", "escape"),
        ("e'\\t\\b\\f\\r'", "\t\b\f\r", "escape"),
        ("E'\\\\'", "\\", "escape"),
        ("E'it\\'s'", "it's", "escape"),
        ("E'it''s'", "it's", "escape"),
        ("E'\\x41\\x4a'", "AJ", "escape"),
        ("E'\\101'", "A", "escape"),
        ("E'\\303\\251'", "é", "escape"),  # byte escapes form UTF-8 together
        ("E'\\xC3\\xA9t\\xC3\\xA9'", "été", "escape"),
        ("E'\\u00e9'", "é", "escape"),
        ("E'\\U0001F600'", "😀", "escape"),
        ("E'\\uD83D\\uDE00'", "😀", "escape"),  # a surrogate pair is one character
        ("E'\\q\\x'", "qx", "escape"),  # unknown escapes stand for the character
        ("U&'d\\0061t\\+000061'", "data", "unicode"),
        ("u&'\\\\'", "\\", "unicode"),
        ("U&'it''s \\00e9'", "it's é", "unicode"),
        ("U&'d!0061t!+000061' UESCAPE '!'", "data", "unicode"),
        ("U&'a!!\\' uescape\n'!'", "a!\\", "unicode"),
        ("$$a 'b' \\c$$", "a 'b' \\c", "dollar"),
        ("$$$$", "", "dollar"),
        ("$fn$ $$ $x$ $fn$", " $$ $x$ ", "dollar"),
        ("$é$x$é$", "x", "dollar"),
    ],
)
def test_decode(token: str, value: str, kind: str) -> None:
    decoded = decode(token, 0)
    assert (decoded.value, decoded.kind) == (value, kind)


@pytest.mark.parametrize(
    ("token", "index", "expected"),
    [
        # decoded character -> the file character it came from
        ("'abc'", 0, "a"),
        ("'abc'", 2, "c"),
        ("'it''s'", 2, "'"),  # the quote maps to the first quote of ''
        ("'it''s'", 3, "s"),
        ("E'a\\nb'", 1, "\\"),  # an escape maps to its backslash
        ("E'a\\nb'", 2, "b"),
        ("E'\\u00e9x'", 1, "x"),
        ("U&'\\0061z'", 1, "z"),
        ("$tag$xyz$tag$", 2, "z"),
    ],
)
def test_offsets_map_back_to_the_file(token: str, index: int, expected: str) -> None:
    offset = 7
    text = text_of(token, offset)
    source_text = " " * offset + token
    assert source_text[text.file_offset(index)] == expected


def test_file_span_of_a_decoded_range() -> None:
    source = SourceFile("t.dsql", "x ~> 'SELECT ''a'' FROM t'")
    decoded = decode(source.text[5:], 5)
    text = ir.Text(decoded.value, source.span(5, len(source.text)), tuple(decoded.breaks))
    start = decoded.value.index("FROM")
    span = text.file_span(source, start, start + 4)
    assert source.text[span.start : span.end] == "FROM"
    assert (span.line, span.column) == (1, source.text.index("FROM") + 1)


@pytest.mark.parametrize(
    ("token", "at", "message"),
    [
        ("E'\\u12g4'", 2, "\\u needs 4 hex digits"),
        ("E'ab\\U0001F6'", 4, "\\U needs 8 hex digits"),
        ("E'\\uD800'", 2, "invalid Unicode code point U+D800"),
        ("E'\\U00110000'", 2, "invalid Unicode code point U+110000"),
        ("E'\\u0000'", 2, "invalid Unicode code point U+0000"),
        ("E'x\\351'", 3, "invalid UTF-8 byte sequence \\xE9"),
        ("E'\\000'", 2, "zero byte"),
        ("U&'\\12'", 3, "\\ needs 4 hex digits"),
        ("U&'a\\+12'", 4, "\\+ needs 6 hex digits"),
        ("U&'\\DC00'", 3, "invalid Unicode code point U+DC00"),
    ],
)
def test_bad_escapes(token: str, at: int, message: str) -> None:
    with pytest.raises(StringError) as caught:
        decode(token, 100)
    assert message in caught.value.message
    assert caught.value.offset == 100 + at
    assert caught.value.length >= 1
    assert caught.value.hint


def _reference_quote(body: str, base: int) -> tuple[str, list[tuple[int, int]]]:
    """Doubled quotes decoded one at a time: the map :func:`decode` must give."""
    out: list[str] = []
    breaks = [(0, base)]
    i = 0
    while i < len(body):
        j = body.find("''", i)
        if j == -1:
            out.append(body[i:])
            break
        out.append(body[i:j])
        decoded = sum(map(len, out))
        out.append("'")
        breaks.append((decoded, base + j))
        breaks.append((decoded + 1, base + j + 2))
        i = j + 2
    return "".join(out), breaks


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "''", "é", " ", "x''y"]), max_size=12), st.integers(0, 50))
def test_doubled_quotes_decode_with_a_break_each(parts: list[str], base: int) -> None:
    body = "".join(parts)
    decoded = decode("'" + body + "'", base - 1)
    assert (decoded.value, decoded.breaks) == _reference_quote(body, base)
