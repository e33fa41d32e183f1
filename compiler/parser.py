"""The parser facade: Lark in, statements and diagnostics out.

The grammar (``grammar/dsql.lark``) is loaded once. The file is lexed in one pass with
comments kept (:mod:`compiler.lexer`), split into statements at ``;`` here, and each statement
is run through the LALR automaton on its own (:mod:`compiler.lalr`), so one syntax error does
not hide the mistakes in later statements. Both are Lark's definitions (its terminals, tables
and tree callbacks) run by small loops several times faster than Lark's own, with identical
tokens and trees. The automaton's reductions build the IR directly (:mod:`compiler.lower`'s
rule callbacks); a statement's Lark tree is made only when asked for. Lark's exceptions are
turned into :class:`compiler.diagnostics.Diagnostic` records here; Lark types do not travel
further than :mod:`compiler.lower`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedToken
from lark.lexer import PatternStr

from compiler import collector, ir
from compiler.diagnostics import Diagnostic, DiagnosticSink, Edit, Fix, Related
from compiler.grouping import Regrouping
from compiler.ir import Comment
from compiler.lalr import drive, recognizer
from compiler.lexer import KIND, START, Lexeme, TokenView, lex, to_token, value
from compiler.lower import Lowerer
from compiler.source import SourceFile, Span

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
        # The driver (compiler.lalr) sets the positions of each tree it builds, which is all the
        # compiler reads; Lark's own position propagation costs more than the parse itself.
        propagate_positions=False,
        maybe_placeholders=True,
        postlex=_KeepTerminals(),
    )


@dataclass
class ParsedStatement:
    """One statement: its tokens (trivia removed) and what lowering made of it.

    ``lowered`` and ``diagnostics`` (lowering's, which :func:`compiler.lower.lower` reports)
    are empty after a syntax error; ``regroupings`` are the operands pg_durable would group
    differently (:mod:`compiler.grouping`).
    """

    text: str  # of the file, which the lexemes point into
    lexemes: list[Lexeme]
    parsed: bool  # False after a syntax error
    lowered: ir.Statement | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    regroupings: list[Regrouping] = field(default_factory=list)

    @cached_property
    def tokens(self) -> list[Token]:
        """The tokens as Lark makes them (for Lark's own parsers), made on demand."""
        text = self.text
        return [to_token(lexeme, text) for lexeme in self.lexemes]

    @cached_property
    def tree(self) -> Tree[Token] | None:
        """Lark's parse tree of the statement (None after a syntax error), made on demand."""
        if not self.parsed:
            return None
        # Lexemes that carry their Lark token, which the tree holds.
        carrying = [
            (*lexeme, token) for lexeme, token in zip(self.lexemes, self.tokens, strict=True)
        ]
        tree: Tree[Token] = drive(carrying, complete=True)
        return tree


@dataclass
class ParseResult:
    source: SourceFile
    statements: list[ParsedStatement]
    comments: list[Comment]
    diagnostics: DiagnosticSink = field(default_factory=DiagnosticSink)


def parse(source: SourceFile, sink: DiagnosticSink | None = None) -> ParseResult:
    """Lex and parse a whole file; never raises on bad input."""
    with collector.paused():
        return _parse(source, sink)


def _parse(source: SourceFile, sink: DiagnosticSink | None) -> ParseResult:
    sink = sink if sink is not None else DiagnosticSink()
    result = ParseResult(source, [], [], sink)
    lowerer = Lowerer(source)
    for tokens, lex_error in _statements(source, lex(source), result):
        if _plain_sql(source, tokens, lex_error, sink):
            continue
        if lex_error is not None:
            # Report the first problem of the statement: a syntax error before the bad
            # character (e.g. the SELECT of a sub-query) says more than the character does.
            if not _parse_prefix(source, tokens, sink):
                _lex_error(source, TokenView(lex_error, source.text), sink)
            continue
        result.statements.append(_parse_statement(source, tokens, sink, lowerer))
    return result


# Statements that begin like these are SQL pasted from a pg_durable example (set-up,
# transactions, monitoring), not workflows.
_SQL_COMMANDS = frozenset(
    [
        "abort",
        "alter",
        "analyze",
        "begin",
        "call",
        "checkpoint",
        "close",
        "cluster",
        "comment",
        "commit",
        "copy",
        "create",
        "deallocate",
        "declare",
        "delete",
        "discard",
        "do",
        "drop",
        "end",
        "execute",
        "explain",
        "fetch",
        "grant",
        "import",
        "insert",
        "listen",
        "load",
        "lock",
        "merge",
        "move",
        "notify",
        "prepare",
        "reassign",
        "refresh",
        "reindex",
        "release",
        "reset",
        "revoke",
        "rollback",
        "savepoint",
        "security",
        "set",
        "show",
        "start",
        "table",
        "truncate",
        "unlisten",
        "update",
        "vacuum",
        "values",
        "with",
    ]
)


def _plain_sql(
    source: SourceFile, tokens: list[Lexeme], lex_error: Lexeme | None, sink: DiagnosticSink
) -> bool:
    """Report a SQL statement that is not a workflow (``CREATE ...``, ``SELECT * FROM ...``)."""
    if not tokens:
        return False
    kind = tokens[0][KIND]
    if kind != "IDENT" and (kind != "SELECT" or len(tokens) > 1):
        return False  # most statements: read no further
    text = source.text
    first = TokenView(tokens[0], text)
    after = tokens[1] if len(tokens) > 1 else lex_error
    following = None if after is None else TokenView(after, text)
    start = first.start_pos or 0
    if (
        first.type == "IDENT"
        and str(first).lower() in _SQL_COMMANDS
        and (following is None or str(following) not in {"(", "."})
    ):
        sink.add(
            "DFC101",
            source.span(start, start + len(first)),
            f"{str(first).upper()} ... is a SQL statement, not a workflow",
            hint="Run set-up and administration SQL with psql. To run it as a workflow step, "
            "put it in quotes: '" + str(first).upper() + " ...' or $$...$$.",
        )
        return True
    if first.type == "SELECT" and len(tokens) == 1 and str(following) == "*":
        sink.add(
            "DFC101",
            source.span(start, start + len(first)),
            "SELECT * ... is a query, not a workflow",
            hint="Run queries such as SELECT * FROM df.list_instances() with psql; a "
            ".dsql file holds workflows. To run it as a step, put it in quotes.",
        )
        return True
    return False


def _statements(
    source: SourceFile, tokens: Iterable[Lexeme], result: ParseResult
) -> Iterator[tuple[list[Lexeme], Lexeme | None]]:
    """Split the token stream at semicolons, dropping trivia (comments are kept aside).

    Each statement comes with its first lexical error, if any; the tokens are those before it.
    """
    text = source.text
    current: list[Lexeme] = []
    error: Lexeme | None = None
    for token in tokens:
        kind = token[0]
        if kind in _PLAIN:  # most tokens: parsed, and never the start of an operator run
            if error is None:
                current.append(token)
            continue
        if kind in _NOT_PARSED:
            if kind in TRIVIA:
                if kind != "WS":
                    _, start, end, line, column, end_line, end_column = token
                    span = Span(start, end, line, column, end_line, end_column)
                    result.comments.append(Comment(text=text[start:end], span=span))
            elif kind == "SEMICOLON":
                if current or error is not None:
                    yield current, error
                current, error = [], None
            elif error is None:  # a lexical error: the statement's first one counts
                error = token
            continue
        if error is not None:
            continue
        # Only the token before it in the statement can touch it: a semicolon, a comment or a
        # lexical error between two tokens takes room.
        if (
            text[token[1]] in _PG_OPERATOR_CHARS  # cheap first test: most tokens are not operators
            and current
            and current[-1][2] == token[1]
            and text[token[1] - 1] in _PG_OPERATOR_CHARS
        ):
            _check_operator_run(source, current[-1], token, result.diagnostics)
        current.append(token)
    if current or error is not None:
        yield current, error


_PG_OPERATOR_CHARS = frozenset("+-*/<>=~!@#%^&|`?")
# The commonest terminals, none of which can begin with one of those characters: a string
# (', E, $), a name (a letter, _ or a non-ASCII character), ( ) , and the dot.
_PLAIN = frozenset({"STRING", "IDENT", "LPAR", "RPAR", "COMMA", "DOT"})
# Tokens that are not fed to the automaton: trivia, statement ends and lexical errors.
_NOT_PARSED = TRIVIA | {"SEMICOLON", "STRAY", *_LEX_ERRORS}


def _check_operator_run(
    source: SourceFile, previous: Lexeme, token: Lexeme, sink: DiagnosticSink
) -> None:
    """Warn where PostgreSQL would lex two touching operators as one (``~>@>``)."""
    first, second = value(previous, source.text), value(token, source.text)
    if not (set(first) <= _PG_OPERATOR_CHARS and set(second) <= _PG_OPERATOR_CHARS):
        return
    run = first + second
    if run[-1] in "+-" and not set(run) & set("~!@#%^&|`?"):
        return  # PostgreSQL gives the trailing +/- back, as in `=>-1`
    at = token[START]
    sink.add(
        "DFC605",
        source.span(previous[START], at + len(second)),
        f"PostgreSQL reads {first}{second} as one operator, so pg_durable would reject this",
        hint="Put a space between the two operators.",
        fixes=(Fix("Insert a space", (Edit(source.span(at, at), " "),)),),
    )


def _lex_error(source: SourceFile, token: TokenView, sink: DiagnosticSink) -> None:
    start = token.start_pos or 0
    if token.type == "STRAY":
        hint = (
            "psql meta-commands (\\gset, \\watch, ...) are not part of a workflow file; remove it."
            if str(token) == "\\"
            else "Steps are string literals or df.* calls joined by operators such as "
            "~> & | ?> !> @>; anything else belongs inside a SQL string."
        )
        sink.add(
            "DFC106", source.span(start, start + 1), f"unexpected character {token!s}", hint=hint
        )
        return
    code, message, hint = _LEX_ERRORS[token.type]
    if token.type == "UNTERMINATED_STRING" and str(token)[:1] in "Ee":
        hint = (
            "Close it with a quote. In E'...' a backslash escapes the next character, so \\' "
            "is a quote inside the string, not its end."
        )
    if token.type == "PSQL_VARIABLE":
        message = message.replace("{text}", str(token))
        end = start + len(token)
    else:
        # Point at the opening quote, not at the whole rest of the file.
        end = start + (len(str(token).split("\n", 1)[0]) or 1)
    sink.add(code, source.span(start, end), message, hint=hint)


def _parse_statement(
    source: SourceFile, tokens: list[Lexeme], sink: DiagnosticSink, lowerer: Lowerer
) -> ParsedStatement:
    """Parse and lower one statement; only a syntax error is reported after a syntax error."""
    lowerer.begin(len(tokens))
    try:
        lowered = drive(tokens, complete=True, machine=lowerer.machine, owner=lowerer)
    except UnexpectedToken as error:
        _syntax_error(source, error, tokens, sink)
        return ParsedStatement(source.text, tokens, parsed=False)
    return ParsedStatement(
        source.text, tokens, True, lowered, lowerer.diagnostics, lowerer.regroupings
    )


def _parse_prefix(source: SourceFile, tokens: list[Lexeme], sink: DiagnosticSink) -> bool:
    """Feed the tokens before a lexical error; report and return True on a syntax error."""
    try:
        drive(tokens, complete=False, machine=recognizer())
    except UnexpectedToken as error:
        _syntax_error(source, error, tokens, sink)
        return True
    return False


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


def describe_token(token: TokenView | Token) -> str:
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


_OPERATORS = frozenset({"~>", "|", "&", "?>", "!>", "|=>", "<->", "||", "::", "=>", ":="})
_OPERAND_TYPES = frozenset(
    {"STRING", "IDENT", "INTEGER", "DECIMAL", "LPAR", "NULL", "TRUE", "FALSE", "MINUS"}
)
_MISSING_OPERATOR = "A ',' or an operator (~> & | ?> !> <-> |=>) may be missing before this."
_CONCAT_HINT = (
    "dfc compiles workflows ahead of time, so || can only join string literals. "
    "Use {var} (declared with df.setvar) or $name references inside the SQL instead."
)


def _syntax_error(
    source: SourceFile, error: UnexpectedToken, lexemes: list[Lexeme], sink: DiagnosticSink
) -> None:
    # The tokens are read by name from here on: views of them, the unexpected one among them
    # (unless it is the end of the statement).
    tokens = [TokenView(lexeme, source.text) for lexeme in lexemes]
    index = next((i for i, lexeme in enumerate(lexemes) if lexeme is error.token), None)
    token = tokens[index] if index is not None else TokenView(error.token, source.text)
    expected = set(error.expected or ())
    if token.type == "$END":
        _end_error(source, tokens, expected, sink)
        return
    previous = _previous(tokens, token)
    if (
        previous is not None
        and previous.type == "IDENT"
        and expected <= {"LPAR", "DOT"} | _terminals_for("=>", ":=")
    ):
        # A bare word where a step belongs: point at the word, not at what follows it.
        start = previous.start_pos or 0
        end = start + len(previous)
        index = next(i for i, t in enumerate(tokens) if t is previous)
        if index >= 2 and tokens[index - 1].type == "DOT":
            # A qualified name without parentheses, e.g. df.sleep.
            start = tokens[index - 2].start_pos or 0
            name = source.text[start:end]
            sink.add(
                "DFC101",
                source.span(start, end),
                f"{name} is not a step",
                hint=f"A function call needs parentheses, e.g. {name}(...).",
            )
            return
        sink.add(
            "DFC101",
            source.span(start, end),
            f"name {previous!s} is not a step",
            hint=_bare_word_hint(previous, tokens),
        )
        return
    start = token.start_pos or 0
    span = source.span(start, start + len(str(token)))
    message = f"unexpected {describe_token(token)}; expected {describe_expected(expected)}"
    code, hint = _hint_for(source, token, previous, tokens, expected)
    sink.add(code, span, message, hint=hint)


@cache
def _terminals_for(*texts: str) -> frozenset[str]:
    """The names Lark gave the anonymous terminals of these literal tokens."""
    return frozenset(
        t.name
        for t in lark_parser().terminals
        if isinstance(t.pattern, PatternStr) and t.pattern.value in texts
    )


def _end_error(
    source: SourceFile, tokens: list[TokenView], expected: set[str], sink: DiagnosticSink
) -> None:
    last = tokens[-1]
    end = last.end_pos or 0
    if len(tokens) == 1 and last.type == "SELECT":
        sink.add(
            "DFC112",
            source.span(last.start_pos or 0, end),
            "SELECT with nothing after it",
            hint="Write the workflow after SELECT, e.g. SELECT df.start('SELECT 1'); "
            "or remove the statement.",
        )
        return
    opened = _unclosed_parenthesis(tokens)
    text = str(last)
    related: tuple[Related, ...] = ()
    if opened is not None:
        hint = "Add the missing ')'."
        start = opened.start_pos or 0
        related = (Related(source.span(start, start + 1), "this '(' is not closed"),)
    elif text == "::":
        hint = "Add a type name after '::', e.g. '{}'::jsonb."
    elif text in _OPERATORS:
        hint = f"Add the step that follows '{text}', or remove the '{text}'."
    elif last.type == "COMMA":
        hint = "Add the argument that follows ',', or remove the ','."
    elif last.type == "IDENT" and len(tokens) > 1 and tokens[-2].type == "DOT":
        hint = f"A function call needs parentheses, e.g. {tokens[-3]!s}.{text}(...)."
    elif last.type == "IDENT":
        start = last.start_pos or 0
        sink.add(
            "DFC101",
            source.span(start, end),
            f"name {text} is not a step",
            hint=_bare_word_hint(last, tokens),
        )
        return
    else:
        hint = "The statement ends before the expression is complete."
    sink.add(
        "DFC102",
        source.span(end, end),
        "unexpected end of statement; expected " + describe_expected(expected),
        hint=hint,
        related=related,
    )


def _previous(tokens: list[TokenView], token: TokenView) -> TokenView | None:
    for index, candidate in enumerate(tokens):
        if candidate is token or candidate.start_pos == token.start_pos:
            return tokens[index - 1] if index > 0 else None
    return None


def _unclosed_parenthesis(
    tokens: list[TokenView], stop: TokenView | None = None
) -> TokenView | None:
    """The innermost '(' still open before ``stop`` (or at the end), if any."""
    stack: list[TokenView] = []
    for token in tokens:
        if token is stop:
            break
        if token.type == "LPAR":
            stack.append(token)
        elif token.type == "RPAR" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _bare_word_hint(word: TokenView, tokens: list[TokenView]) -> str:
    text = str(word)
    if word is tokens[0] and difflib.get_close_matches(text.upper(), ["SELECT"], n=1, cutoff=0.6):
        return "Did you mean SELECT?"
    return (
        f"Steps are SQL in quotes: write '{text}' for SQL, or df.{text}(...) for a df.* function."
    )


def _hint_for(
    source: SourceFile,
    token: TokenView,
    previous: TokenView | None,
    tokens: list[TokenView],
    expected: set[str],
) -> tuple[str, str]:
    """The code and hint of an unexpected token, from the token and the one before it."""
    text = str(token)
    before = str(previous) if previous is not None else None
    if text == "||" or before == "||":
        return "DFC110", _CONCAT_HINT
    if token.type == "SELECT":
        return "DFC110", (
            "dfc compiles workflows ahead of time, so a sub-query cannot supply a workflow or "
            "an argument. Write the workflow or value in the file, or run the query as a SQL "
            "step and use its result as $name."
        )
    if token.type == "IDENT" and text.lower() == "as":
        return "DFC101", "A workflow statement takes no column alias: remove 'AS ...'."
    if token.type == "IDENT" and text.lower() in {"and", "or", "not"}:
        return "DFC101", "Conditions are SQL: put them inside the string, e.g. 'SELECT a AND b'."
    if before == "|=>":
        return "DFC101", "|=> takes the result name as a string literal, e.g. |=> 'total'."
    if token.type == "RPAR":
        if previous is not None and previous.type == "COMMA":
            return "DFC101", "Remove the ',' before ')', or add the missing argument."
        if _unclosed_parenthesis(tokens, token) is None:
            return "DFC101", "This ')' has no matching '('; remove it."
    if text in _OPERATORS:
        if previous is None or previous.type in {"LPAR", "COMMA", "SELECT"}:
            return "DFC101", f"'{text}' needs a step on its left."
        if str(previous) in _OPERATORS:
            return "DFC101", f"A step is missing between '{previous!s}' and '{text}'."
        if text == "!>":
            return (
                "DFC101",
                "!> (else) only follows an if: write condition ?> then_step !> else_step.",
            )
    if token.type == "IDENT" and expected & _OPERAND_START:
        return "DFC101", (
            f"Steps are SQL in quotes: write '{text}' for SQL, or df.{text}(...) for a df.* "
            "function."
        )
    if (token.type in _OPERAND_TYPES or text == "@>") and expected & {"RPAR", "COMMA", "$END"}:
        return "DFC101", _MISSING_OPERATOR
    if before == "-":
        return "DFC101", "'-' can only stand before a number, as in -5."
    if expected <= {"IDENT"}:
        if before == "::":
            return "DFC101", "A type name must follow '::', e.g. '{}'::jsonb."
        return "DFC101", f"A name must follow '{before}', as in df.sleep(...)."
    if token.type == "COMMA":
        if expected & _OPERAND_START:
            return "DFC101", "An argument is missing before this ','."
        if "$END" in expected:
            return "DFC101", (
                "',' only separates the arguments of a call, and no call is open here: "
                "check for a ')' too many before it."
            )
        if "RPAR" in expected:
            return "DFC101", (
                "Parentheses group one expression; join steps with an operator such as "
                "~> or &, or write a call such as df.join(a, b)."
            )
        return "DFC101", "Check the parentheses and commas around here."
    if token.type == "DOT":
        return "DFC101", "'.' joins a schema and a function name, as in df.sleep(...)."
    if text in {"=>", ":="}:
        return "DFC101", (
            f"A named argument is written name {text} value, with the parameter name "
            "unquoted, inside a call."
        )
    return "DFC101", "Check the expression at this position against the operators and df.* calls."
