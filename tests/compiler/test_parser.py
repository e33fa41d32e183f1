"""The parser facade: tokens and trees as Lark makes them, errors as diagnostics, any size.

The parser runs Lark's LALR tables in its own loop and lexes with one compiled regex; these
tests hold it to Lark's own results (same tokens with the same positions, same trees with
the same node positions) on every corpus file, and check the error paths and the limits.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import pytest
from lark import Lark, Token, Tree

from compiler import ir
from compiler.api import front_end
from compiler.parser import grammar_text, lark_parser, parse
from compiler.source import SourceFile

CORPUS = sorted((Path(__file__).parent / "corpus").rglob("*.dsql"))
sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from parse_bench import generate  # noqa: E402


@cache
def reference_parser() -> Lark:
    """The grammar as plain Lark parses it, positions propagated by Lark itself."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="basic",
        regex=True,
        propagate_positions=True,
        maybe_placeholders=True,
    )


def texts() -> list[tuple[str, str]]:
    out = [(p.stem, p.read_text(encoding="utf-8")) for p in CORPUS]
    out.append(("generated", generate(600)))
    return out


@pytest.mark.parametrize(("name", "text"), texts(), ids=[n for n, _ in texts()])
def test_tokens_match_larks_lexer(name: str, text: str) -> None:
    expected = [t for t in lark_parser().lex(text, dont_ignore=True) if t.type != "WS"]
    parsed = parse(SourceFile(name, text))
    tokens = [t for s in parsed.statements for t in s.tokens]
    mine = {t.start_pos: t for t in tokens}
    for token in expected:
        if token.type in {"COMMENT", "BLOCK_COMMENT", "SEMICOLON"} or token.start_pos not in mine:
            continue
        got = mine[token.start_pos]
        fields = ("type", "start_pos", "end_pos", "line", "column", "end_line", "end_column")
        assert [getattr(got, f) for f in fields] == [getattr(token, f) for f in fields]
        assert str(got) == str(token)
    assert (
        len(tokens)
        == sum(1 for t in expected if t.type not in {"COMMENT", "BLOCK_COMMENT", "SEMICOLON"})
        or parsed.diagnostics.has_errors
    )


@pytest.mark.parametrize(("name", "text"), texts(), ids=[n for n, _ in texts()])
def test_trees_match_larks_parser(name: str, text: str) -> None:
    parsed = parse(SourceFile(name, text))
    for statement in parsed.statements:
        if statement.tree is None:
            continue
        interactive = reference_parser().parse_interactive(start="start")
        for token in statement.tokens:
            interactive.feed_token(token)
        expected = interactive.feed_eof(statement.tokens[-1])
        assert statement.tree == expected
        for mine, theirs in zip(
            statement.tree.iter_subtrees(), expected.iter_subtrees(), strict=True
        ):
            assert (mine.meta.start_pos, mine.meta.end_pos) == (
                theirs.meta.start_pos,
                theirs.meta.end_pos,
            ), mine.data


def test_grammar_is_strict_lalr() -> None:
    parser = lark_parser()
    assert parser.options.parser == "lalr"
    assert parser.options.strict


def test_statements_are_parsed_independently() -> None:
    result = front_end("'a' ~> ;\n'b' ~> 'c';\n(('d');\n'e'")
    assert [d.code for d in result.diagnostics] == ["DFC102", "DFC102"]
    bodies = [w.body for w in result.program.workflows]
    assert [type(b) for b in bodies] == [ir.Seq, ir.Sql]


def test_comments_are_collected_with_positions() -> None:
    result = front_end("-- one\n'a' /* two /* nested */ */ ~> 'b'; -- three")
    assert [c.text for c in result.comments] == [
        "-- one",
        "/* two /* nested */ */",
        "-- three",
    ]
    assert [(c.span.line, c.span.column) for c in result.comments] == [(1, 1), (2, 5), (2, 36)]


@pytest.mark.parametrize(
    ("text", "code", "column", "hint"),
    [
        ("'a' ~>", "DFC102", 7, "Add the step that follows '~>'"),
        ("SELECT", "DFC112", 1, "Write the workflow after SELECT"),
        ("('a'", "DFC102", 5, "Add the missing ')'"),
        ("'a')", "DFC101", 4, "no matching '('"),
        ("~> 'a'", "DFC101", 1, "needs a step on its left"),
        ("'a' ~> & 'b'", "DFC101", 8, "between '~>' and '&'"),
        ("'a' !> 'b'", "DFC101", 5, "!> (else) only follows an if"),
        ("'a' |=> b", "DFC101", 9, "|=> takes the result name"),
        ("'a' || b", "DFC110", 8, "|| can only join string literals"),
        ("df.sleep(1) || 'x'", "DFC110", 13, "|| can only join string literals"),
        ("'a' ~> SELECT 'b'", "DFC110", 8, "sub-query"),
        ("df.sleep(5,)", "DFC101", 12, "Remove the ','"),
        ("df.sleep(5 6)", "DFC101", 12, "may be missing"),
        ("'a' AND 'b'", "DFC101", 5, "Conditions are SQL"),
        ("SELEC df.start('a')", "DFC101", 1, "Did you mean SELECT?"),
        ("df.start(refresh)", "DFC101", 10, "write 'refresh' for SQL"),
        ("'a' # 'b'", "DFC106", 5, "belongs inside a SQL string"),
        ("'a' \\gset", "DFC106", 5, "psql meta-commands"),
        ("'a' ~> :v", "DFC107", 8, "df.setvar"),
        ("(SELECT g FROM t WHERE id = 1)", "DFC110", 2, "sub-query"),
        ("'a' ~> 'b", "DFC103", 8, "Close it"),
        ("E'a\\'", "DFC103", 1, "\\' is a quote inside the string"),
        ("'it''s", "DFC103", 1, "Close it"),
        ("$x$ a $$", "DFC104", 1, "$tag$"),
        ("'a' /* /* */", "DFC105", 5, "nest"),
        ("'a', 'b'", "DFC101", 4, "no call is open"),
        ("('a', 'b')", "DFC101", 5, "Parentheses group one expression"),
        ("df.join(, 'a')", "DFC101", 9, "An argument is missing"),
        ("'a' ~> .x(1)", "DFC101", 8, "'.' joins a schema"),
        ("df.http('u' => 1)", "DFC101", 13, "named argument is written"),
        ("'a' ~> - df.sleep(1)", "DFC101", 10, "'-' can only stand before a number"),
        ("'a'::", "DFC102", 6, "type name after '::'"),
        ("df.(1)", "DFC101", 4, "A name must follow '.'"),
        ("'a' ~> df.sleep ~> 'b'", "DFC101", 8, "needs parentheses"),
        ("CREATE TABLE t (a int)", "DFC101", 1, "Run set-up and administration SQL with psql"),
        ("SELECT * FROM df.list_instances()", "DFC101", 1, "with psql"),
        ("SELECT df.start('a') AS id", "DFC101", 22, "no column alias"),
        ("lonely", "DFC101", 1, "write 'lonely' for SQL"),
    ],
)
def test_syntax_errors(text: str, code: str, column: int, hint: str) -> None:
    result = front_end(text)
    assert [(d.code, d.span.line, d.span.column) for d in result.diagnostics] == [(code, 1, column)]
    assert hint in (result.diagnostics[0].hint or "")


def test_a_syntax_error_before_a_bad_character_is_reported_first() -> None:
    result = front_end("SELECT df.start((SELECT x FROM t WHERE a = 1));")
    assert [d.code for d in result.diagnostics] == ["DFC110"]


# -- size limits: iterative parsing, bounded lowering ----------------------------------------


def test_five_thousand_nested_parentheses() -> None:
    result = front_end("(" * 5000 + "'SELECT 1'" + ")" * 5000)
    assert not result.diagnostics
    body = result.program.workflows[0].body
    assert isinstance(body, ir.Sql)
    assert body.span.start == 5000


def test_twenty_thousand_step_chain_is_one_sequence() -> None:
    result = front_end(" ~> ".join(f"'SELECT {i}'" for i in range(20_000)))
    assert not result.diagnostics
    body = result.program.workflows[0].body
    assert isinstance(body, ir.Seq)
    assert len(body.steps) == 20_000
    assert sum(1 for _ in body.walk()) == 20_001


def test_twenty_thousand_branch_join() -> None:
    result = front_end(" & ".join(f"'SELECT {i}'" for i in range(20_000)))
    body = result.program.workflows[0].body
    assert isinstance(body, ir.Join)
    assert len(body.branches) == 20_000


@pytest.mark.parametrize(
    "text",
    [
        " !> ".join(f"'c{i}' ?> 't{i}'" for i in range(3000)) + " !> 'e'",
        " <-> ".join(["'x'"] * 5000),
        "'x'" + " |=> 'a'" * 5000,
        "df.seq(" * 3000 + "'a'" + ", 'b')" * 3000,
        "@> " * 3000 + "'x'",
        "(" * 5000 + "'a'",
        "df.sleep(" * 5000,
    ],
    ids=["else-if-3000", "undo-5000", "bind-5000", "calls-3000", "loops-3000", "unclosed", "calls"],
)
def test_deep_nesting_is_a_diagnostic_not_a_crash(text: str) -> None:
    result = front_end(text)
    codes = {d.code for d in result.diagnostics}
    # Either compiled, or reported as too deep / unbalanced; never an exception.
    assert codes <= {"DFC111", "DFC102", "DFC213"}
    if "DFC111" in codes:
        assert not result.program.statements
    depth_error = next((d for d in result.diagnostics if d.code == "DFC111"), None)
    if depth_error is not None:
        assert depth_error.hint


def test_trees_never_leave_lark_types_behind_in_the_ir() -> None:
    result = front_end("SELECT df.start('a' ~> df.sleep(1) |=> 'x', 'l');")
    for workflow in result.program.workflows:
        for node in workflow.body.walk():
            for value in vars(node).values() if hasattr(node, "__dict__") else ():
                assert not isinstance(value, Token | Tree)


def test_an_unclosed_parenthesis_is_a_related_place_not_words_in_the_hint() -> None:
    text = "'a' ~>\n  ('b' ~> 'c'\n;"
    result = front_end(text)
    [diagnostic] = [d for d in result.diagnostics if d.code == "DFC102"]
    assert diagnostic.hint == "Add the missing ')'."
    assert "line" not in (diagnostic.hint or "") + diagnostic.message
    [related] = diagnostic.related
    assert related.message == "this '(' is not closed"
    assert (related.span.line, related.span.column) == (2, 3)
    assert text[related.span.start : related.span.end] == "("
