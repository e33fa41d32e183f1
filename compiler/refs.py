"""Finding ``$name`` and ``{var}`` references in step text: the one scanner of references.

The checker, the language server and the runtime's substitution (``runtime/substitution.py``)
all find references here, so a reference the checker sees is the one the runtime substitutes.
SQL is lexed with PostgreSQL's rules: references in plain SQL, inside ``'…'`` and ``E'…'``
literals and inside ``$tag$`` bodies are substituted; comments and quoted identifiers are left
alone; ``$1`` is a parameter and ``$tag$`` a dollar quote, not a reference; a ``$`` right after
an identifier character is part of that identifier. Raw texts (HTTP url, body and header values,
break values) are substituted everywhere. ``{var}`` is substituted everywhere, before ``$name``.

Besides the references, :func:`scan_sql` returns the SQL with each reference replaced by a
placeholder *of the same length* and a suitable shape (a string literal for a value, an
identifier for a ``$name.*`` row set or a ``{var}``), so the statement can be handed to the real
PostgreSQL parser and every position it reports is a position in the original text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from compiler.frozen import quick_init

_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# $name, $name.* (a row set: no null-safe form), $name.column, each but $name.* with a null-safe ?
_REF = re.compile(rf"\$({_IDENT})(?:(\.\*)|\.({_IDENT})(\?)?|(\?))?")
_TAG = r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$"
_DOLLAR_TAG = re.compile(_TAG)
# What a ``$`` in plain SQL starts, in the order it is decided: a dollar quote's opening tag
# (group 1), else a reference (groups 2-6 as in _REF); one match instead of one per question.
_AFTER_DOLLAR = re.compile(rf"({_TAG})|\$({_IDENT})(?:(\.\*)|\.({_IDENT})(\?)?|(\?))?")
# Where plain SQL may stop being plain: a quote, a comment or a dollar.
_SPECIAL = re.compile(r"['\"$]|--|/\*")
_STRING_BODY = re.compile(r"(?:[^']+|'')*")
_EXTENDED_BODY = re.compile(r"(?:[^'\\]+|\\.|'')*", re.DOTALL)
_COMMENT_MARK = re.compile(r"/\*|\*/")


@quick_init
@dataclass(frozen=True)
class Literal:
    """The string literal or dollar-quoted body a reference is inside, for whoever substitutes
    into it: the escaping of a value depends on the kind of quote, and a value must not close a
    dollar quote."""

    start: int  # the first character of the body
    end: int  # the closing quote, or the end of the text when there is none
    quote: str  # "'" for a string literal, the ``$tag$`` of a dollar-quoted body
    extended: bool = False  # an E'…' literal, where backslashes escape


@quick_init
@dataclass(frozen=True)
class Ref:
    """One ``$name`` reference; offsets are into the decoded text."""

    name: str
    column: str | None
    star: bool
    nullsafe: bool
    start: int
    end: int
    context: str  # "code" (plain SQL), "string", "dollar" or "raw"
    # For "string" and "dollar": the literal the reference is inside. Derived from the offsets
    # and the text, so left out of equality, hashing and repr.
    literal: Literal | None = field(default=None, compare=False, repr=False)

    @property
    def spelled(self) -> str:
        text = f"${self.name}"
        if self.star:
            return text + ".*"
        if self.column is not None:
            text += f".{self.column}"
        return text + ("?" if self.nullsafe else "")


@quick_init
@dataclass(frozen=True)
class VarRef:
    """One ``{name}`` reference."""

    name: str
    start: int
    end: int


@quick_init
@dataclass(frozen=True)
class Scan:
    refs: tuple[Ref, ...]
    variables: tuple[VarRef, ...]
    params: tuple[int, ...] = ()  # offsets of $1-style parameters in plain SQL
    masked: str = ""  # SQL only: references replaced by same-length placeholders


def _is_ident_char(char: str) -> bool:
    return char.isalnum() or char in "_$" or ord(char) >= 0x80


def _parse_ref(text: str, start: int, context: str, literal: Literal | None = None) -> Ref | None:
    match = _REF.match(text, start)
    if match is None:
        return None
    name, star, column, column_nullsafe, nullsafe = match.groups()
    return Ref(
        name,
        column,
        star is not None,
        column_nullsafe is not None or nullsafe is not None,
        start,
        match.end(),
        context,
        literal,
    )


def _variables(text: str) -> tuple[VarRef, ...]:
    if "{" not in text:
        return ()
    return tuple(VarRef(m.group(1), m.start(), m.end()) for m in _VAR.finditer(text))


def _body_refs(
    text: str, start: int, end: int, context: str, out: list[Ref], literal: Literal | None = None
) -> None:
    i = text.find("$", start, end)
    while i >= 0:
        ref = _parse_ref(text, i, context, literal)
        if ref is not None and ref.end <= end:
            out.append(ref)
            i = text.find("$", ref.end, end)
        else:
            i = text.find("$", i + 1, end)


@lru_cache(maxsize=4096)
def scan_text(text: str) -> Scan:
    """References in a raw text (HTTP fields, break values): substituted everywhere."""
    refs: list[Ref] = []
    if "$" in text:
        _body_refs(text, 0, len(text), "raw", refs)
    return Scan(tuple(refs), _variables(text))


def _string_close(text: str, start: int, extended: bool) -> int:
    """Index of the quote closing the literal opened at ``start``, or -1 if none does."""
    body = (_EXTENDED_BODY if extended else _STRING_BODY).match(text, start + 1)
    end = start + 1 if body is None else body.end()  # never None: the body may be empty
    return end if end < len(text) and text[end] == "'" else -1


def _comment_end(text: str, start: int) -> int:
    """Index just after the end of the (nesting) block comment opened at ``start``."""
    depth = 0
    mark = _COMMENT_MARK.search(text, start)
    while mark is not None:
        depth += 1 if mark.group(0) == "/*" else -1
        if depth == 0:
            return mark.end()
        mark = _COMMENT_MARK.search(text, mark.end())
    return len(text)


@lru_cache(maxsize=8192)
def scan_sql(text: str) -> Scan:
    """References in SQL text, and the text with placeholders for the PostgreSQL parser."""
    variables = _variables(text) if "{" in text else ()  # the test first: most SQL has no {
    if "$" not in text and not variables:
        return Scan((), (), (), text)
    # (start, end, placeholder) for each reference, in no particular order.
    masks: list[tuple[int, int, str]] = []
    for var in variables:
        # A {var} is raw text; an identifier is the shape that parses in most places it is
        # used (schema, table and column names, numbers in LIMIT), and inside literals any
        # text is fine.
        masks.append((var.start, var.end, "_" + text[var.start + 1 : var.end - 1] + "_"))
    if "$" not in text:  # only a $ starts a reference or a parameter
        return Scan((), variables, (), _masked(text, masks))
    refs: list[Ref] = []
    params: list[int] = []
    if "'" not in text and '"' not in text and "--" not in text and "/*" not in text:
        # Plain SQL throughout (most steps): every $ is where the loop below would stop.
        i = text.find("$")
        while i >= 0:
            i = text.find("$", _dollar(text, i, refs, params, masks))
        return Scan(tuple(refs), variables, tuple(params), _masked(text, masks))
    i, n = 0, len(text)
    while True:
        special = _SPECIAL.search(text, i)
        if special is None:
            break
        i = special.start()
        char = text[i]
        if char == "$":
            i = _dollar(text, i, refs, params, masks)
        elif char == "'":
            extended = i > 0 and text[i - 1] in "eE" and not (i > 1 and _is_ident_char(text[i - 2]))
            close = _string_close(text, i, extended)
            body_end = n if close < 0 else close
            if text.find("$", i + 1, body_end) >= 0:
                literal = Literal(i + 1, body_end, "'", extended)
                _body_refs(text, i + 1, body_end, "string", refs, literal)
            i = n if close < 0 else close + 1
        elif char == '"':
            end = text.find('"', i + 1)
            while end >= 0 and text.startswith('""', end):
                end = text.find('"', end + 2)
            i = n if end < 0 else end + 1
        elif char == "-":
            end = text.find("\n", i)
            i = n if end < 0 else end
        else:
            i = _comment_end(text, i)
    return Scan(tuple(refs), variables, tuple(params), _masked(text, masks))


def _masked(text: str, masks: list[tuple[int, int, str]]) -> str:
    """``text`` with each masked range replaced (the ranges do not overlap)."""
    if not masks:
        return text
    if len(masks) == 1:
        start, end, placeholder = masks[0]
        return text[:start] + placeholder + text[end:]
    masks.sort()
    pieces: list[str] = []
    at = 0
    for start, end, placeholder in masks:
        pieces.append(text[at:start])
        pieces.append(placeholder)
        at = end
    pieces.append(text[at:])
    return "".join(pieces)


def _dollar(
    text: str, i: int, refs: list[Ref], params: list[int], masks: list[tuple[int, int, str]]
) -> int:
    # Runs for every ``$`` in plain SQL of every step: the tests of _is_ident_char and
    # _parse_ref are written out here, and one pattern tells a dollar quote from a reference.
    if i > 0:
        before = text[i - 1]
        if before.isalnum() or before == "_" or before == "$" or before >= "\x80":
            return i + 1
    found = _AFTER_DOLLAR.match(text, i)
    if found is None:
        if i + 1 < len(text) and text[i + 1].isdigit():
            params.append(i)
        return i + 1
    if found.lastindex == 1:  # a dollar quote
        tag = found.group(1)
        start = found.end()
        close = text.find(tag, start)
        body_end = len(text) if close < 0 else close
        if text.find("$", start, body_end) >= 0:
            _body_refs(text, start, body_end, "dollar", refs, Literal(start, body_end, tag))
        return len(text) if close < 0 else close + len(tag)
    # A reference: its name starts with a letter or _, so this is no $1 parameter.
    _, name, star, column, column_nullsafe, nullsafe = found.groups()
    end = found.end()
    refs.append(
        Ref(
            name,
            column,
            star is not None,
            column_nullsafe is not None or nullsafe is not None,
            i,
            end,
            "code",
            None,
        )
    )
    # A row set becomes a FROM item, an identifier of the same length; a value becomes a
    # literal: the runtime renders numbers, booleans, NULL and strings, and a string literal
    # is valid wherever any of those is.
    placeholder = "_" * (end - i) if star is not None else "'" + "x" * (end - i - 2) + "'"
    masks.append((i, end, placeholder))
    return end
