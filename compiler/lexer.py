"""The lexer: the grammar's terminals as one compiled pattern, scanned in a single pass.

The terminals are defined once, in ``grammar/dsql.lark``. Lark validates them and orders them
by priority (its ``BasicLexer``); this module joins them into one alternation in that order, so
the first alternative that matches at a position is the token Lark's lexer would produce there,
with the same type, text and positions (``tests/compiler/test_lexer.py`` holds it to that on
the corpus and on random input). It is several times faster than Lark's own loop because:

* the pattern is compiled with the standard ``re`` module, which scans this pattern about three
  times faster than the ``regex`` module Lark needs for the grammar. A terminal ``re`` cannot
  express (the nested block comment's recursion) becomes a zero-width *trigger* on its literal
  prefix (``/*``); at such a position the exact ``regex`` pattern decides. The two
  modules disagree about ``\\s`` only on the separator controls U+001C-U+001F, so a file that
  contains one is scanned with the ``regex`` pattern alone;
* whitespace is skipped by the pattern before each token where WS would be the token there, so
  a scan makes one match per token instead of two;
* a few sub-patterns are rewritten into equivalent forms ``re`` runs faster (:data:`_FASTER`),
  such as a quoted string's body as runs of plain characters instead of one character at a time;
* the commonest terminals (:data:`_COMMON`) are tried first wherever that cannot change which
  terminal matches, and each terminal is marked by an empty group behind its pattern, so that
  ``re`` passes over an alternative whose first character does not fit (:func:`_alternation`);
* lines and columns come from the source's index of line starts, walked forward once, instead
  of counting the newlines of every token;
* tokens are plain tuples of a terminal and positions (:data:`Lexeme`; not Lark's ``str``
  subclass ``Token``, which took a microsecond to build), without their text, which is sliced
  out of the file where it is read; a terminal's callback (retyping names such as ``select``
  as the keyword SELECT) runs once per distinct spelling in a file. :func:`to_token` makes
  the Lark token where Lark itself must read one (its tree builder, the formatter).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from copy import copy
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from lark import Token
from lark.lexer import BasicLexer, PatternStr

from compiler.firstchars import first_chars, overlap
from compiler.source import SourceFile

WHITESPACE = "WS"

# A recursive call in a ``regex`` pattern, which ``re`` cannot parse: (?&name), (?P>name), (?R)
# or (?1).
_RECURSION = re.compile(r"\(\?(?:&\w+|P>\w+|R|[0-9]+)\)")
# Where ``re`` and ``regex`` disagree about ``\s`` (str.isspace() against Unicode White_Space).
# Looked for one by one: ``in`` finds a character about a hundred times faster than a search
# for a character class.
_DISPUTED_SPACES = ("\x1c", "\x1d", "\x1e", "\x1f")
# Whitespace skipped before each token: a run that starts with ASCII whitespace, where WS is the
# only terminal that matches and takes the whole run (a run that starts with a non-ASCII space
# is a name: IDENT comes first).
_SPACES = "(?:[ \\t\\n\\r\\f\\v]\\s*)?"
# The terminals most tokens of a workflow file are, commonest first: string literals, the
# parentheses and commas of calls, operators, names. The lexer tries them first wherever that
# cannot change which terminal matches (:func:`_commonest_first`). Named by terminal name or,
# for the grammar's anonymous terminals, by their text.
_COMMON = ("STRING", "LPAR", "RPAR", "COMMA", "~>", "DOT", "IDENT", "|=>", "&", "|", "?>", "!>")
# Sub-patterns of the grammar's terminals and equivalent forms that ``re`` matches faster: a
# quoted body as runs of plain characters between doubled quotes instead of an alternation per
# character. Only the ``re`` pattern uses them; a grammar without them is merely slower.
_FASTER = {
    "'(?:[^']|'')*+'": "'[^']*+(?:''[^']*+)*+'",
    # A name's characters as one class instead of an alternation of two per character
    # (``[^\x00-\x7f]`` is every character above U+007F).
    "(?:[A-Za-z_]|[^\x00-\x7f])": "[A-Za-z_\\x80-\\U0010ffff]",
    "(?:[A-Za-z0-9_$]|[^\x00-\x7f])*": "[A-Za-z0-9_$\\x80-\\U0010ffff]*",
    "(?:[A-Za-z0-9_]|[^\x00-\x7f])*": "[A-Za-z0-9_\\x80-\\U0010ffff]*",
}


# One token: ``(kind, start, end, line, column, end_line, end_column)``, its terminal and its
# positions (offsets 0-based, lines and columns 1-based, ends just past the last character).
# A plain tuple because the lexer makes one per token: a tuple display is the quickest record
# Python builds. Its text is not in it (``text[start:end]`` of the file, see :func:`value`):
# most tokens' text is never read, and slicing it out of the file cost as much as the record.
Lexeme = tuple[str, int, int, int, int, int, int]
# The positions of a lexeme's items, for the code that reads tokens rarely; the hot loops of
# the parser and of lowering index lexemes with the numbers themselves.
KIND: Final = 0
START: Final = 1
END: Final = 2
LINE: Final = 3
COLUMN: Final = 4
END_LINE: Final = 5
END_COLUMN: Final = 6


def value(lexeme: Lexeme, text: str) -> str:
    """The text of a lexeme of the file ``text`` (the end of a statement has none)."""
    return "" if lexeme[KIND] == END_OF_STATEMENT else text[lexeme[START] : lexeme[END]]


# The end of a statement, as Lark's parser sees it.
END_OF_STATEMENT = "$END"


class TokenView:
    """A lexeme with its text, under the names Lark's ``Token`` uses.

    For the code that reads tokens seldom and by name (syntax errors, lexical errors): ``str()``
    and ``len()`` give the text, as for a Lark token.
    """

    __slots__ = (
        "column",
        "end_column",
        "end_line",
        "end_pos",
        "line",
        "start_pos",
        "type",
        "value",
    )

    def __init__(self, lexeme: Lexeme, text: str) -> None:
        self.type, self.start_pos, self.end_pos, self.line, self.column = lexeme[:5]
        self.end_line, self.end_column = lexeme[5:]
        self.value = value(lexeme, text)

    def __str__(self) -> str:
        return self.value

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return f"TokenView({self.type!r}, {self.value!r})"


def to_token(lexeme: Lexeme, text: str) -> Token:
    """The token Lark's lexer makes for a lexeme of the file ``text``."""
    kind, start, end, line, column, end_line, end_column = lexeme
    return Token(kind, value(lexeme, text), start, line, column, end_line, end_column, end)


@dataclass(frozen=True)
class Scanner:
    """The grammar's terminals compiled for :func:`lex`."""

    fast: Any  # whitespace, then the alternation, compiled with ``re`` (with triggers)
    exact: Any  # the same compiled with Lark's ``regex`` module
    fast_kinds: tuple[str, ...]  # the name of each of ``fast``'s groups, by number
    exact_kinds: tuple[str, ...]
    triggers: frozenset[str]  # terminals whose positions ``exact`` decides
    callbacks: dict[str, Callable[[Token], Token]]
    # Terminals the loop of :func:`lex` looks at twice: WS, the triggers, those with callbacks.
    special: frozenset[str]


@cache
def scanner() -> Scanner:
    """The terminal alternation of :func:`compiler.parser.lark_parser`, built once.

    Built from the lexer configuration the parser already validated (Lark's own
    ``lex(dont_ignore=True)`` would build and re-validate a lexer on every call), trivia
    included.
    """
    from compiler.parser import lark_parser

    conf = copy(lark_parser().lexer_conf)
    conf.ignore = ()
    conf.skip_validation = True
    lexer = BasicLexer(conf)
    terminals = lexer.scanner.terminals  # builds the lexer, and with it ``lexer.callback``
    flags = conf.g_regex_flags
    exact_parts: list[tuple[Any, str]] = []
    fast_parts: list[tuple[Any, str]] = []
    triggers: set[str] = set()
    for terminal in terminals:
        regexp = terminal.pattern.to_regexp()
        exact_parts.append((terminal, regexp))
        try:
            re.compile(regexp)
            for slow, faster in _FASTER.items():
                regexp = regexp.replace(slow, faster)
            fast_parts.append((terminal, regexp))
        except re.error:
            triggers.add(terminal.name)
            fast_parts.append((terminal, _trigger(regexp)))
    fast_parts = _commonest_first(fast_parts, flags)
    fast = re.compile(_alternation(fast_parts), flags)
    exact = conf.re_module.compile(_alternation(exact_parts), flags)
    return Scanner(
        fast=fast,
        exact=exact,
        fast_kinds=_kinds(fast),
        exact_kinds=_kinds(exact),
        triggers=frozenset(triggers),
        callbacks=dict(lexer.callback),
        special=frozenset({WHITESPACE, *triggers, *lexer.callback}),
    )


def _alternation(parts: list[tuple[Any, str]]) -> str:
    """Whitespace (group 1), then the first terminal that matches, or the end of the text.

    Each terminal is marked by an empty group named after it *behind* its pattern: the match's
    ``lastindex`` names the terminal all the same, and each alternative begins with its own
    first element, which lets ``re`` pass over an alternative whose first character does not
    fit without entering it. ``\\Z`` ends the scan on trailing whitespace.
    """
    marked = [f"(?:{regexp})(?P<{terminal.name}>)" for terminal, regexp in parts]
    return f"({_SPACES})(?:{'|'.join(marked)}|\\Z)"


def _commonest_first(parts: list[tuple[Any, str]], flags: int) -> list[tuple[Any, str]]:
    """The terminals in Lark's order, but the commonest (:data:`_COMMON`) tried first.

    The first terminal that matches wins, so a terminal moves ahead of another only where the
    two can never match at the same position: where their matches cannot begin with the same
    character (:mod:`compiler.firstchars`). Each common terminal moves as far forward as that
    allows, not past the common ones placed before it.
    """
    order = list(parts)
    starts = {id(terminal): first_chars(regexp, flags) for terminal, regexp in parts}
    placed = 0
    for wanted in _COMMON:
        index = next((i for i, (t, _) in enumerate(order) if _is(t, wanted)), None)
        if index is None or index < placed:
            continue
        chars = starts[id(order[index][0])]
        target = index
        while target > placed and not overlap(starts[id(order[target - 1][0])], chars):
            target -= 1
        order.insert(target, order.pop(index))
        if target == placed:
            placed += 1
    return order


def _is(terminal: Any, wanted: str) -> bool:
    """Whether ``terminal`` is the one :data:`_COMMON` names (by name, or by its text)."""
    pattern = terminal.pattern
    return terminal.name == wanted or (isinstance(pattern, PatternStr) and pattern.value == wanted)


def _kinds(pattern: Any) -> tuple[str, ...]:
    """The name of each group of ``pattern`` by number (a match's ``lastindex``)."""
    kinds = [""] * (pattern.groups + 1)
    for name, number in pattern.groupindex.items():
        kinds[number] = name
    return tuple(kinds)


def _trigger(regexp: str) -> str:
    """A zero-width ``re`` pattern that matches wherever ``regexp`` could match.

    Every match of ``regexp`` starts with its literal prefix (``/*`` for a block comment), so
    a lookahead for the prefix is enough for the exact pattern to take over there. Without a
    literal prefix the trigger matches everywhere: still correct, only slower.
    """
    prefix = _literal_prefix(regexp)
    return f"(?={re.escape(prefix)})" if prefix else "(?=)"


def _literal_prefix(regexp: str) -> str:
    """The characters every match of ``regexp`` begins with, read from its parse.

    ``re``'s own parser reads the pattern once recursive calls (which come after the prefix
    in any useful terminal) are replaced by something it can parse; the walk stops at the
    first element that is not a plain literal or a flag-free group around literals.
    """
    from re import _constants as sre
    from re import _parser

    try:
        parsed = _parser.parse(_RECURSION.sub("(?!)", regexp))
    except re.error:
        return ""
    if parsed.state.flags & re.IGNORECASE:
        return ""
    prefix: list[str] = []

    def walk(items: Any) -> bool:
        """Collect the literals of ``items``; False where the prefix ends."""
        for op, argument in items:
            if op is sre.LITERAL:
                prefix.append(chr(argument))
            elif op is sre.SUBPATTERN and not argument[1] and not argument[2]:
                if not walk(argument[3]):
                    return False
            else:
                return False
        return True

    walk(parsed.data)
    return "".join(prefix)


def lex(source: SourceFile) -> list[Lexeme]:
    """The tokens of the file, comments included and whitespace left out.

    Tokens carry the positions Lark's lexer gives them (offsets, 1-based lines and columns,
    ends); :func:`value` gives their text. STRAY matches any other character, so lexing is
    total.
    """
    scan = scanner()
    text = source.text
    if not any(char in text for char in _DISPUTED_SPACES):
        fast, kinds, triggers = scan.fast, scan.fast_kinds, scan.triggers
    else:
        fast, kinds, triggers = scan.exact, scan.exact_kinds, frozenset()
    exact = scan.exact.match
    exact_kinds = scan.exact_kinds
    callbacks = scan.callbacks
    special = scan.special
    retyped: dict[tuple[str, str], str] = {}
    # Line starts with a sentinel past the end, so the walk below needs no bounds check.
    starts = (*source.line_starts, len(text) + 1)
    line = 1  # the line of the current position
    line_start = 0  # where it starts
    following = starts[1]  # where the next line starts
    tokens: list[Lexeme] = []
    add = tokens.append
    pos, size = 0, len(text)
    # The loop runs once per token of the file: it is written for speed, with the rare cases
    # (whitespace left to WS, a trigger, a retyping callback) behind one set lookup.
    while pos < size:
        # ``scanner().match`` yields consecutive matches, each starting where the last ended.
        for found in iter(fast.scanner(text, pos).match, None):
            number = found.lastindex
            if number == 1:  # only whitespace was left (group 1), then the end
                pos = size
                break
            kind = kinds[number]
            decided = retype = False
            if kind in special:
                if kind == WHITESPACE:  # what the ASCII whitespace before a token leaves to WS
                    continue
                if kind in triggers:
                    decided = True
                    found = exact(text, found.end(1))
                    kind = exact_kinds[found.lastindex]
                retype = kind in callbacks
            start = found.end(1)  # the token starts after the whitespace before it
            end = found.end()
            # Advance to the lines of the token's start and end.
            while following <= start:
                line_start = following
                following = starts[line + 1]
                line += 1
            column = start - line_start + 1
            token_line = line
            while following <= end:
                line_start = following
                following = starts[line + 1]
                line += 1
            if retype:
                key = (kind, text[start:end])
                typed = retyped.get(key)
                if typed is None:
                    # Lark's callbacks here only retype a token (keywords lexed as names).
                    typed = retyped[key] = callbacks[kind](Token(*key)).type
                kind = typed
            add((kind, start, end, token_line, column, line, end - line_start + 1))
            if decided:
                pos = end
                break  # restart the fast scan after the token the exact pattern matched
        else:  # pragma: no cover - STRAY or the end matches at every position
            raise AssertionError(f"the lexer matched nothing after offset {pos}")
    return tokens
