"""The LALR driver: where it stops on a syntax error is where Lark's own parser stops.

The driver skips pass-through reductions (``?seq_expr: race_expr``) by looking up where a
reduction and the pass-throughs after it leave the automaton; a syntax error must still be
found at the same token, with the same expected terminals, as Lark finds it.
"""

from __future__ import annotations

import pytest
from lark.exceptions import UnexpectedToken

from compiler.lalr import drive, recognizer
from compiler.lexer import lex, to_token
from compiler.parser import lark_parser
from compiler.source import SourceFile


def larks_error(text: str) -> tuple[int, set[str]]:
    """Where Lark's parser, fed the compiler's tokens, finds the error, and what it expected."""
    lexemes = lex(SourceFile("t.dsql", text))
    interactive = lark_parser().parse_interactive(start="start")
    try:
        for lexeme in lexemes:
            interactive.feed_token(to_token(lexeme, text))
        interactive.feed_eof(to_token(lexemes[-1], text))
    except UnexpectedToken as error:
        return (error.token.start_pos if error.token.type != "$END" else -1), set(error.expected)
    raise AssertionError(f"no syntax error in {text!r}")


def drivers_error(text: str) -> tuple[int, set[str]]:
    lexemes = lex(SourceFile("t.dsql", text))
    try:
        drive(lexemes, complete=True, machine=recognizer())
    except UnexpectedToken as error:
        token = error.token
        return (token[1] if token[0] != "$END" else -1), set(error.expected)
    raise AssertionError(f"no syntax error in {text!r}")


@pytest.mark.parametrize(
    "text",
    [
        "'a' ~>",
        "'a' ~> ~> 'b'",
        "'a' 'b' & 'c' |",
        "('a' | 'b' ~> 'c'",
        "'a' ?> 'b' !> 'c' !> 'd'",
        "df.sleep(1) df.sleep(2)",
        "df.seq('a' |=> 'x' & 'b',)",
        "'a' <-> 'b' <-> |=> 'x'",
        "@> 'a' ~> 'b' ?> 'c' !>",
        "'x'::jsonb::",
        "SELECT 'a' & ('b' | 'c') ~> )",
        "- 'a'",
        "df.http('u', method => 'POST' ~> ,)",
        "'a' |=> 'x' |=> & 'b'",
    ],
)
def test_syntax_errors_are_found_where_lark_finds_them(text: str) -> None:
    assert drivers_error(text) == larks_error(text)
