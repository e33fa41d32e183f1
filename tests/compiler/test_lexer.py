"""The lexer yields exactly the tokens Lark's own lexer yields, positions included.

``compiler.lexer`` compiles the grammar's terminals with the ``re`` module and hands positions
``re`` cannot decide (nested block comments) and files ``re`` reads differently (the separator
controls U+001C-U+001F) to the ``regex`` module; these tests compare it with a Lark lexer built
from the same grammar on the corpus, on generated files and on random text.
"""

from __future__ import annotations

import sys
from copy import copy
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark.lexer import BasicLexer, LexerThread

from compiler.firstchars import first_chars, overlap
from compiler.lexer import TokenView, _trigger, lex, scanner
from compiler.parser import lark_parser
from compiler.source import SourceFile

CORPUS = sorted((Path(__file__).parent / "corpus").rglob("*.dsql"))
sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from compile_bench import generate as generate_compile  # noqa: E402
from parse_bench import generate as generate_parse  # noqa: E402

FIELDS = ("type", "value", "start_pos", "line", "column", "end_line", "end_column", "end_pos")


@cache
def reference_lexer() -> BasicLexer:
    """Lark's lexer for the grammar, keeping every token (built once: building is slow)."""
    conf = copy(lark_parser().lexer_conf)
    conf.ignore = ()
    return BasicLexer(conf)


def expected(text: str) -> list[tuple[object, ...]]:
    tokens = LexerThread.from_text(reference_lexer(), text).lex(None)
    return [tuple(getattr(t, f) for f in FIELDS) for t in tokens if t.type != "WS"]


def actual(text: str) -> list[tuple[object, ...]]:
    views = [TokenView(t, text) for t in lex(SourceFile("t.dsql", text))]
    return [tuple(getattr(t, f) for f in FIELDS) for t in views]


def corpus_texts() -> list[tuple[str, str]]:
    out = [(p.stem, p.read_text(encoding="utf-8")) for p in CORPUS]
    out.append(("compile-bench", generate_compile(400)))
    out.append(("parse-bench", generate_parse(400)))
    return out


@pytest.mark.parametrize(("name", "text"), corpus_texts(), ids=[n for n, _ in corpus_texts()])
def test_corpus_tokens_match_larks_lexer(name: str, text: str) -> None:
    assert actual(text) == expected(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n  ",
        "'a' /* one /* two */ three */ ~> 'b'",
        "/* open /* nested */ but never closed",
        "/* /* /* /* /* /* /* /* /* /* /* /* /* /* /* /* /* /* /* /* /* /* /* /* /* /*",
        "'a' -- trailing\n/**/ 'b'",
        "'x\x1c' \x1d df.sleep(1)\x1e;\x1f",
        "select Select SELECT selecT nullx NULL true FALSE",
        "\xa0'a'\u3000~>\u2028'b'",
        "$$a$$ $t$ b $t$ $x$ never closed",
        "E'\\'' U&'\\0041' UESCAPE '!' 'it''s",
        "'multi\nline\nstring' ~>\n\n  'next'",
    ],
)
def test_edge_cases_match_larks_lexer(text: str) -> None:
    assert actual(text) == expected(text)


def test_regex_only_terminals_are_triggered_by_their_prefix() -> None:
    found = scanner()
    assert found.triggers == {"BLOCK_COMMENT"}
    assert "(?:(?=/\\*))(?P<BLOCK_COMMENT>)" in found.fast.pattern


def _order(pattern: object) -> list[str]:
    """The terminals of a scanner pattern, in the order it tries them."""
    groups = pattern.groupindex  # type: ignore[attr-defined]
    terminals = {t.name for t in reference_lexer().terminals}
    return sorted((name for name in groups if name in terminals), key=groups.__getitem__)


def test_terminals_are_reordered_only_where_they_cannot_compete() -> None:
    found = scanner()
    larks = [t.name for t in reference_lexer().terminals]
    assert _order(found.exact) == larks
    fast = _order(found.fast)
    assert sorted(fast) == sorted(larks) and fast[0] == "STRING" and fast != larks
    regexps = {}
    for terminal in reference_lexer().terminals:
        regexp = terminal.pattern.to_regexp()
        regexps[terminal.name] = regexp if terminal.name not in found.triggers else _trigger(regexp)
    starts = {name: first_chars(regexp) for name, regexp in regexps.items()}
    for index, earlier in enumerate(larks):
        for later in larks[index + 1 :]:
            if fast.index(later) < fast.index(earlier):
                assert not overlap(starts[earlier], starts[later]), (earlier, later)


@pytest.mark.parametrize(
    ("regexp", "ascii", "other"),
    [
        ("abc", "a", False),
        ("(?i:select)", "Ss", True),
        ("[0-9]+(?![0-9.])", "0123456789", False),
        ("(?:[0-9]+\\.|\\.[0-9])", ".0123456789", False),
        ("(?=/\\*)", "/", False),
        ("(?!x)[a-c]", "abc", False),
        ("x?y", "xy", False),
        ("[^\\x00-\\x7e]", "\x7f", True),
        ("\\$[a-z]*\\$", "$", False),
    ],
)
def test_first_chars_of_a_pattern(regexp: str, ascii: str, other: bool) -> None:
    found = first_chars(regexp)
    assert found is not None
    assert (found.ascii, found.other) == (frozenset(ascii), other)


@pytest.mark.parametrize("regexp", ["", "a*", "(?=a)?", "(a)?\\1b", "(?=a*)b"])
def test_first_chars_unknown_where_a_match_may_be_empty_or_unread(regexp: str) -> None:
    assert first_chars(regexp) is None
    assert overlap(first_chars(regexp), first_chars("z"))


_ALPHABET = "ab$'\"EeUu&/*-\n \t\x1c\xa0.:;()[]{}0123456789é\\_|~>?!@<=,"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=60))
def test_random_text_matches_larks_lexer(text: str) -> None:
    assert actual(text) == expected(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_unicode_matches_larks_lexer(text: str) -> None:
    assert actual(text) == expected(text)
