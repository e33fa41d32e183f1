"""Lexemes: plain tuples of a terminal and positions, read back as Lark's tokens.

The lexer's tokens carry no text (:mod:`compiler.lexer`); these tests hold the ways of reading
them (``value``, ``TokenView``, ``to_token``) to Lark's own tokens, including the end of a
statement, and check that a syntax error still names the token where it happened.
"""

from __future__ import annotations

import pytest
from lark import Token

from compiler.api import front_end
from compiler.lalr import _end_of
from compiler.lexer import END_OF_STATEMENT, TokenView, lex, to_token, value
from compiler.parser import lark_parser, parse
from compiler.source import SourceFile

TEXT = "SELECT df.start(\n  'a''b' |=> 'x' ~> E'\\n' & $t$ c $t$,\n  label => 'l') -- end\n;"


def larks(text: str) -> list[Token]:
    return [t for t in lark_parser().lex(text, dont_ignore=True) if t.type != "WS"]


def test_lexemes_read_as_larks_tokens() -> None:
    lexemes = lex(SourceFile("t.dsql", TEXT))
    expected = larks(TEXT)
    assert [value(lexeme, TEXT) for lexeme in lexemes] == [str(t) for t in expected]
    for lexeme, token in zip(lexemes, expected, strict=True):
        made = to_token(lexeme, TEXT)
        fields = ("type", "start_pos", "end_pos", "line", "column", "end_line", "end_column")
        assert [getattr(made, f) for f in fields] == [getattr(token, f) for f in fields]
        assert str(made) == str(token)
        view = TokenView(lexeme, TEXT)
        assert [getattr(view, f) for f in fields] == [getattr(token, f) for f in fields]
        assert (str(view), len(view)) == (str(token), len(token))


def test_the_end_of_a_statement_has_no_text() -> None:
    lexemes = lex(SourceFile("t.dsql", "'a' ~> 'b'"))
    end = _end_of(lexemes[-1])
    assert end[0] == END_OF_STATEMENT and end[1:] == lexemes[-1][1:]
    assert value(end, "'a' ~> 'b'") == ""
    assert str(TokenView(end, "'a' ~> 'b'")) == ""


def test_statement_tokens_are_larks() -> None:
    parsed = parse(SourceFile("t.dsql", TEXT))
    (statement,) = parsed.statements
    tokens = statement.tokens
    assert all(isinstance(t, Token) for t in tokens)
    assert [str(t) for t in tokens] == [str(t) for t in larks(TEXT) if t.type != "COMMENT"][:-1]
    tree = statement.tree
    assert tree is not None
    assert all(isinstance(t, Token) for t in tree.scan_values(lambda v: not hasattr(v, "data")))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("'a' ~> ~> 'b'", "unexpected '~>'"),
        ("df.sleep(1) 'a'", "unexpected string 'a'"),
        ("'a' ~>", "unexpected end of statement"),
        ("'a' ~>@> 'b'", "PostgreSQL reads ~>@> as one operator"),
        ("(SELECT 1)", "unexpected 'SELECT'"),
    ],
)
def test_messages_name_the_token(text: str, message: str) -> None:
    messages = [d.message for d in front_end(text, "t.dsql").diagnostics]
    assert any(m.startswith(message) for m in messages), messages
