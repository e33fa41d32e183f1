"""The parser facade: Lark in, statements and diagnostics out.

The grammar (``grammar/dsql.lark``) is loaded once. The file is lexed in one pass with
trivia kept, split into statements at ``;``, and each statement is fed to the LALR parser on
its own, so one syntax error does not hide the mistakes in later statements. Lark's
exceptions are turned into :class:`compiler.diagnostics.Diagnostic` records here; Lark types
do not travel further than :mod:`compiler.lower`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from copy import copy
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import BasicLexer, LexerThread, PatternStr

from compiler.diagnostics import DiagnosticSink
from compiler.ir import Comment
from compiler.source import SourceFile

TRIVIA = frozenset({"WS", "COMMENT", "BLOCK_COMMENT"})
_LEX_ERRORS = {
    "UNTERMINATED_STRING": (
        "DFC103",
        "unterminated string literal",
        "Close it with a matching quote; write a quote inside a string as ''.",
    ),
    "UNTERMINATED_DOLLAR": (
        "DFC104",
        "unterminated dollar-quoted string",
        "A $tag$ string ends at the next identical $tag$.",
    ),
    "UNTERMINATED_COMMENT": (
        "DFC105",
        "unterminated block comment",
        "Close it with */ (block comments nest: every /* needs its own */).",
    ),
    "PSQL_VARIABLE": (
        "DFC107",
        "psql variables like {text} are expanded by psql, not by dfc",
        "Write the value itself, or declare it with SELECT df.setvar('name', 'value') and use {name}.",
    ),
}


class _KeepTerminals:
    """A no-op post-lexer whose only job is to keep terminals no rule uses in the lexer."""

    always_accept = ("SEMICOLON", *_LEX_ERRORS, "STRAY")

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return stream


@cache
def grammar_text() -> str:
    return resources.files("grammar").joinpath("dsql.lark").read_text("utf-8")


@cache
def lark_parser() -> Lark:
    """The Lark parser, built once per process."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="basic",
        strict=True,
        regex=True,
        propagate_positions=True,
        maybe_placeholders=True,
        postlex=_KeepTerminals(),
    )


@dataclass
class ParsedStatement:
    """One statement: its tokens (trivia removed) and its tree, or None after a syntax error."""

    tokens: list[Token]
    tree: Tree[Token] | None


@dataclass
class ParseResult:
    source: SourceFile
    statements: list[ParsedStatement]
    comments: list[Comment]
    diagnostics: DiagnosticSink = field(default_factory=DiagnosticSink)


def parse(source: SourceFile, sink: DiagnosticSink | None = None) -> ParseResult:
    """Lex and parse a whole file; never raises on bad input."""
    sink = sink if sink is not None else DiagnosticSink()
    result = ParseResult(source, [], [], sink)
    for tokens in _statements(source, _lex(source), result):
        tree = _parse_statement(source, tokens, sink)
        result.statements.append(ParsedStatement(tokens, tree))
    return result


@cache
def _trivia_lexer() -> BasicLexer:
    """A lexer over the grammar's terminals that also returns whitespace and comments.

    ``Lark.lex(dont_ignore=True)`` would build (and re-validate) a new lexer on every call;
    this one is built once, from the configuration the parser already validated.
    """
    conf = copy(lark_parser().lexer_conf)
    conf.ignore = ()
    conf.skip_validation = True
    return BasicLexer(conf)


def _lex(source: SourceFile) -> Iterator[Token]:
    try:
        yield from LexerThread.from_text(_trivia_lexer(), source.text).lex(None)
    except UnexpectedCharacters as error:  # pragma: no cover - STRAY makes lexing total
        offset = error.pos_in_stream or 0
        yield Token("STRAY", source.text[offset : offset + 1], offset, error.line, error.column)


def _statements(
    source: SourceFile, tokens: Iterable[Token], result: ParseResult
) -> Iterator[list[Token]]:
    """Split the token stream at semicolons; report lexical errors and drop trivia."""
    current: list[Token] = []
    broken = False
    for token in tokens:
        kind = token.type
        if kind in TRIVIA:
            if kind != "WS":
                start = token.start_pos or 0
                result.comments.append(
                    Comment(text=str(token), span=source.span(start, start + len(token)))
                )
            continue
        if kind == "SEMICOLON":
            if current and not broken:
                yield current
            current, broken = [], False
            continue
        if kind in _LEX_ERRORS or kind == "STRAY":
            if not broken:
                _lex_error(source, token, result.diagnostics)
            broken = True
            continue
        current.append(token)
    if current and not broken:
        yield current


def _lex_error(source: SourceFile, token: Token, sink: DiagnosticSink) -> None:
    start = token.start_pos or 0
    if token.type == "STRAY":
        sink.add(
            "DFC106",
            source.span(start, start + 1),
            f"unexpected character {token!s}",
            hint="Steps are string literals or df.* calls joined by operators such as ~> & | ?> !> @>.",
        )
        return
    code, message, hint = _LEX_ERRORS[token.type]
    if token.type == "PSQL_VARIABLE":
        message = message.replace("{text}", str(token))
        end = start + len(token)
    else:
        # Point at the opening quote, not at the whole rest of the file.
        end = start + (len(str(token).split("\n", 1)[0]) or 1)
    sink.add(code, source.span(start, end), message, hint=hint)


def _parse_statement(
    source: SourceFile, tokens: list[Token], sink: DiagnosticSink
) -> Tree[Token] | None:
    parser = lark_parser().parse_interactive(start="start")
    try:
        for token in tokens:
            parser.feed_token(token)
        tree: Tree[Token] = parser.feed_eof(tokens[-1])  # type: ignore[no-untyped-call]
    except UnexpectedToken as error:
        _syntax_error(source, error, tokens, sink)
        return None
    except UnexpectedInput as error:  # pragma: no cover - defensive
        offset = getattr(error, "pos_in_stream", 0) or 0
        sink.add("DFC101", source.span(offset, offset + 1), "syntax error")
        return None
    return tree


# --------------------------------------------------------------------------------------------
# Syntax error messages
# --------------------------------------------------------------------------------------------

_TERMINAL_NAMES = {
    "STRING": "a string literal",
    "IDENT": "a name",
    "INTEGER": "a number",
    "DECIMAL": "a number",
    "ARRAY_SUFFIX": "[]",
    "LPAR": "(",
    "RPAR": ")",
    "COMMA": ",",
    "DOT": ".",
    "MINUS": "-",
    "$END": "end of statement",
}
_OPERAND_START = {"STRING", "IDENT", "LPAR"}


@cache
def _display_names() -> dict[str, str]:
    names = dict(_TERMINAL_NAMES)
    for terminal in lark_parser().terminals:
        if isinstance(terminal.pattern, PatternStr) and terminal.name not in names:
            names[terminal.name] = terminal.pattern.value.upper()
    return names


def describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of statement"
    if token.type == "STRING":
        text = str(token)
        return "string " + (text if len(text) <= 30 else text[:27] + "...")
    if token.type == "IDENT":
        return f"name {token!s}"
    return f"'{token!s}'"


def describe_expected(expected: Iterable[str]) -> str:
    names = _display_names()
    expected = set(expected)
    parts: list[str] = []
    if expected >= _OPERAND_START:
        parts.append("a step (a string literal, a df.* call or a parenthesised expression)")
        expected -= _OPERAND_START | {
            "INTEGER",
            "DECIMAL",
            "MINUS",
            "NULL",
            "TRUE",
            "FALSE",
            "__ANON_0",
        }
    shown = sorted(
        {names.get(e, e) for e in expected if not e.startswith("__ANON")}
        | {names.get(e, e) for e in expected if e.startswith("__ANON")}
    )
    quoted = [s if s.startswith("a ") or s == "end of statement" else f"'{s}'" for s in shown]
    parts.extend(quoted)
    if len(parts) > 8:
        parts = [*parts[:7], "..."]
    return ", ".join(parts)


def _syntax_error(
    source: SourceFile, error: UnexpectedToken, tokens: list[Token], sink: DiagnosticSink
) -> None:
    token = error.token
    expected = set(error.expected or ())
    if token.type == "$END":
        last = tokens[-1]
        end = last.end_pos or 0
        sink.add(
            "DFC102",
            source.span(end, end),
            "unexpected end of statement; expected " + describe_expected(expected),
            hint=_end_hint(tokens),
        )
        return
    previous = _previous(tokens, token)
    if previous is not None and previous.type == "IDENT" and expected <= {"LPAR", "DOT"}:
        # A bare word where a step belongs: point at the word, not at what follows it.
        start = previous.start_pos or 0
        sink.add(
            "DFC101",
            source.span(start, start + len(previous)),
            f"name {previous!s} is not a step",
            hint=_hint_for(previous, tokens, _OPERAND_START),
        )
        return
    start = token.start_pos or 0
    span = source.span(start, start + len(str(token)))
    message = f"unexpected {describe_token(token)}; expected {describe_expected(expected)}"
    hint = _hint_for(token, tokens, expected)
    code = "DFC110" if hint is not None and hint.startswith("dfc compiles") else "DFC101"
    sink.add(code, span, message, hint=hint)


def _previous(tokens: list[Token], token: Token) -> Token | None:
    for index, candidate in enumerate(tokens):
        if candidate is token or candidate.start_pos == token.start_pos:
            return tokens[index - 1] if index > 0 else None
    return None


def _end_hint(tokens: list[Token]) -> str | None:
    depth = sum(1 if t.type == "LPAR" else -1 if t.type == "RPAR" else 0 for t in tokens)
    if depth > 0:
        return f"{depth} '(' not closed."
    return None


def _hint_for(token: Token, tokens: list[Token], expected: set[str]) -> str | None:
    text = str(token)
    if text == "||":
        return (
            "dfc compiles workflows ahead of time, so || can only join string literals. "
            "Use {var} (declared with df.setvar) or $name references inside the SQL instead."
        )
    if token.type == "SELECT":
        return (
            "dfc compiles workflows ahead of time: a sub-query that builds a workflow at run "
            "time cannot be compiled. Write the workflow itself in the file."
        )
    if token.type == "IDENT" and expected & _OPERAND_START:
        return (
            f"Steps are SQL in quotes: write '{text}' for SQL, or df.{text}(...) for a df.* "
            "function."
        )
    if token.type == "STRING" and "RPAR" in expected:
        return "A ',' or an operator (~> & | ?> !> <-> |=>) may be missing before this string."
    if token.type == "IDENT" and text.lower() in {"and", "or", "not"}:
        return "Conditions are SQL: put them inside the string, e.g. 'SELECT a AND b'."
    return None
