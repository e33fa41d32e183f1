"""The characters a regular expression's matches can begin with, read from its parse.

The lexer tries the grammar's terminals as one alternation, first match wins, in Lark's order
of priority. Two terminals whose matches cannot begin with the same character never compete
for a position, so their order does not matter, and the lexer may try the commoner one first
(:func:`compiler.lexer.scanner`). :func:`first_chars` gives the set to compare: a superset of
the first characters of every non-empty match, or ``None`` when it cannot tell (the pattern
may match the empty string, or uses a construct this reader does not follow), which compares
as every character.

The set is kept as the ASCII characters plus one flag for "some character above U+007F": the
grammar's terminals only spell out ASCII, and whatever else they accept is counted as one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from re import _constants as sre  # the parser's opcodes, as re itself uses them
from re import _parser
from typing import Any

_ASCII = frozenset(map(chr, range(128)))


@dataclass(frozen=True)
class FirstChars:
    """The ASCII characters a match may begin with, and whether it may begin above ASCII."""

    ascii: frozenset[str]
    other: bool

    def __or__(self, other: FirstChars) -> FirstChars:
        return FirstChars(self.ascii | other.ascii, self.other or other.other)

    def overlaps(self, other: FirstChars) -> bool:
        return bool(self.ascii & other.ascii) or (self.other and other.other)


_NOTHING = FirstChars(frozenset(), False)
_ANYTHING = FirstChars(_ASCII, True)


class _Unknown(Exception):
    """A construct the reader does not follow: the answer is "any character"."""


def first_chars(regexp: str, flags: int = 0) -> FirstChars | None:
    """A superset of the first characters of the non-empty matches of ``regexp``, or None."""
    try:
        parsed = _parser.parse(regexp, flags)
        chars, nullable = _sequence(list(parsed.data), parsed.state.flags)
    except (_Unknown, re.error):
        return None
    return None if nullable else chars


def overlap(first: FirstChars | None, second: FirstChars | None) -> bool:
    """Whether a match of each could begin with the same character (unknown overlaps all)."""
    if first is None or second is None:
        return True
    return first.overlaps(second)


def _sequence(items: list[tuple[Any, Any]], flags: int) -> tuple[FirstChars, bool]:
    """The first characters of a sequence, and whether all of it may match empty."""
    chars = _NOTHING
    for op, argument in items:
        item, nullable = _item(op, argument, flags)
        chars = chars | item
        if not nullable:
            return chars, False
    return chars, True


def _item(op: Any, argument: Any, flags: int) -> tuple[FirstChars, bool]:
    """The first characters of one parsed element, and whether it may match empty."""
    if op is sre.LITERAL:
        return _literal(argument, flags), False
    if op is sre.IN:
        return _charset(argument, flags), False
    if op is sre.ANY or op is sre.NOT_LITERAL:
        return _ANYTHING, False
    if op is sre.SUBPATTERN:
        _group, add, delete, pattern = argument
        return _sequence(list(pattern), (flags | add) & ~delete)
    if op is sre.ATOMIC_GROUP:
        return _sequence(list(argument), flags)
    if op is sre.BRANCH:
        chars, nullable = _NOTHING, False
        for branch in argument[1]:
            more, empty = _sequence(list(branch), flags)
            chars, nullable = chars | more, nullable or empty
        return chars, nullable
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, _high, pattern = argument
        chars, nullable = _sequence(list(pattern), flags)
        return chars, nullable or low == 0
    if op is sre.ASSERT and argument[0] == 1:
        # A lookahead: a match begins with what the lookahead begins with.
        chars, nullable = _sequence(list(argument[1]), flags)
        if nullable:
            raise _Unknown
        return chars, False
    if op is sre.ASSERT_NOT or op is sre.AT:
        return _NOTHING, True  # zero-width: the next element decides
    raise _Unknown


def _literal(code: int, flags: int) -> FirstChars:
    char = chr(code)
    if flags & re.IGNORECASE:
        # Case folding reaches beyond ASCII (s and U+017F, k and U+212A): count that too.
        folded = {char, char.lower(), char.upper()}
        return FirstChars(frozenset(folded) & _ASCII, True)
    return FirstChars(frozenset({char}) & _ASCII, code > 127)


def _charset(items: list[tuple[Any, Any]], flags: int) -> FirstChars:
    """The characters of a ``[...]`` class (any class with a category may include non-ASCII)."""
    negate = False
    chars: set[str] = set()
    other = False
    for op, argument in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            found = _literal(argument, flags)
            chars |= found.ascii
            other = other or found.other
        elif op is sre.RANGE:
            low, high = argument
            chars |= {chr(c) for c in range(low, min(high, 127) + 1)}
            other = other or high > 127 or bool(flags & re.IGNORECASE)
            if flags & re.IGNORECASE:
                chars |= {c.swapcase() for c in chars if c.isalpha()}
        elif op is sre.CATEGORY:
            chars |= _category(argument)
            other = True
        else:
            raise _Unknown
    if negate:
        if flags & re.IGNORECASE:
            raise _Unknown  # the class above may hold more than its spelling: no complement
        return FirstChars(_ASCII - chars, True)
    return FirstChars(frozenset(chars), other)


@cache
def _category(category: Any) -> frozenset[str]:
    """The ASCII characters of a category such as ``\\s`` or ``\\w``, found by testing them."""
    spelling = {
        sre.CATEGORY_SPACE: r"\s",
        sre.CATEGORY_NOT_SPACE: r"\S",
        sre.CATEGORY_DIGIT: r"\d",
        sre.CATEGORY_NOT_DIGIT: r"\D",
        sre.CATEGORY_WORD: r"\w",
        sre.CATEGORY_NOT_WORD: r"\W",
    }.get(category)
    if spelling is None:
        raise _Unknown
    pattern = re.compile(spelling)
    return frozenset(c for c in _ASCII if pattern.fullmatch(c))
