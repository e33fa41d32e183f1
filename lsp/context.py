"""Cursor context: what the text around a position is, even while it does not parse.

Completion and signature help run on text the user is in the middle of typing, which is
usually not a valid statement. This module reads the statement chunk lexically
(:mod:`lsp.lexing`): whether the cursor is in a string or a comment, which ``df.*`` call and
which argument it is in, what the string is for (SQL, a result name, a URL…), and whether the
cursor is at the start of a statement. When the IR is needed for text that does not parse,
:func:`repaired_workflow` closes the open string and parentheses *before* the cursor and parses
that: everything a completion at the cursor may depend on lies before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from compiler import ir
from compiler.api import front_end
from compiler.catalogue import Function, Param
from compiler.catalogue import load as load_catalogue
from lsp.lexing import Lexeme, lexeme_at, scan

_CALL_NAME = re.compile(r"df\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*$", re.IGNORECASE)
_NAMED_ARG = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=>|:=)\s*$")
_BIND_BEFORE = re.compile(r"\|=>\s*$")
_STATEMENT_START = re.compile(r"\s*(?:SELECT\s*)?\Z", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class CallContext:
    """The innermost ``df.*`` call around a position."""

    function: Function | None
    name: str
    name_start: int  # chunk offset of the function name
    open_paren: int  # chunk offset of its `(`
    arg_index: int  # positional index of the argument the cursor is in
    named: str | None  # the name of a named argument (`name => …`)

    @property
    def param(self) -> Param | None:
        if self.function is None:
            return None
        if self.named is not None:
            return self.function.param(self.named)
        if self.arg_index < len(self.function.params):
            return self.function.params[self.arg_index]
        return None


def _plain_segments(
    text: str, lexemes: tuple[Lexeme, ...], start: int, end: int
) -> list[tuple[int, int]]:
    """The parts of ``text[start:end]`` outside strings and comments."""
    segments: list[tuple[int, int]] = []
    pos = start
    for lexeme in lexemes:
        if lexeme.end <= pos or lexeme.kind not in ("string", "comment"):
            continue
        if lexeme.start >= end:
            break
        if lexeme.start > pos:
            segments.append((pos, lexeme.start))
        pos = max(pos, lexeme.end)
    if pos < end:
        segments.append((pos, end))
    return segments


def call_at(text: str, offset: int) -> CallContext | None:
    """The innermost ``df.*`` call whose parentheses contain ``offset`` in chunk ``text``."""
    lexemes = scan(text)
    stack: list[int] = []
    for lexeme in lexemes:
        if lexeme.start >= offset:
            break
        if lexeme.kind == "lpar":
            stack.append(lexeme.start)
        elif lexeme.kind == "rpar" and stack:
            stack.pop()
    catalogue = load_catalogue()
    while stack:
        paren = stack.pop()
        match = _CALL_NAME.search(text, 0, paren)
        if match is None:
            continue  # a parenthesised expression: look further out
        name = match.group(1).lower()
        arg_index = 0
        arg_start = paren + 1
        depth = 0
        for seg_start, seg_end in _plain_segments(text, lexemes, paren + 1, offset):
            for index in range(seg_start, seg_end):
                char = text[index]
                if char == "(":
                    depth += 1
                elif char == ")":
                    depth -= 1
                elif char == "," and depth == 0:
                    arg_index += 1
                    arg_start = index + 1
        before = text[arg_start:offset]
        named_match = _NAMED_ARG.match(before.lstrip())
        named = named_match.group(1).lower() if named_match else None
        return CallContext(catalogue.get(name), name, match.start(1), paren, arg_index, named)
    return None


@dataclass(frozen=True, slots=True)
class StringContext:
    """The cursor is inside a string literal."""

    lexeme: Lexeme
    body_start: int  # chunk offset where the string's content starts
    role: str  # "sql", "name", "text", "cron", "url", "jsonb", "label"


def string_at(text: str, offset: int) -> StringContext | None:
    lexeme = lexeme_at(scan(text), offset)
    if lexeme is None or lexeme.kind != "string":
        return None
    body_start = lexeme.start + len(lexeme.opener)
    return StringContext(lexeme, body_start, _string_role(text, lexeme))


def _string_role(text: str, lexeme: Lexeme) -> str:
    before = text[: lexeme.start]
    if _BIND_BEFORE.search(before):
        return "name"
    call = call_at(text, lexeme.start)
    if call is None:
        return "sql"
    param = call.param
    if param is None:
        return "sql"
    if param.type in ("step", "sql"):
        return "sql"
    if param.type == "name":
        return "name"
    if param.format in ("cron", "url"):
        return param.format
    if param.name == "label":
        return "label"
    return "jsonb" if param.type == "jsonb" else "text"


def in_comment(text: str, offset: int) -> bool:
    lexeme = lexeme_at(scan(text), offset)
    return lexeme is not None and lexeme.kind == "comment"


def at_statement_start(text: str, offset: int) -> bool:
    """True when only blanks, comments and an optional ``SELECT`` precede ``offset``."""
    lexemes = scan(text)
    plain = "".join(text[a:b] for a, b in _plain_segments(text, lexemes, 0, offset))
    plain = re.sub(r"(?:df\s*\.\s*)?[A-Za-z_]*\Z", "", plain)
    return _STATEMENT_START.match(plain) is not None


def repair(text: str, offset: int) -> list[str]:
    """Candidate texts that end the statement right after ``offset`` and may parse."""
    lexemes = scan(text)
    prefix = text[:offset]
    inside = lexeme_at(lexemes, offset)
    depth = 0
    for lexeme in lexemes:
        if lexeme.start >= offset:
            break
        if lexeme.kind == "lpar":
            depth += 1
        elif lexeme.kind == "rpar":
            depth = max(0, depth - 1)
    closers = ")" * depth
    if inside is not None and inside.kind == "string":
        return [prefix + inside.closer + closers, prefix + inside.closer + " ''" + closers]
    if inside is not None:
        prefix += inside.closer
    return [
        prefix + closers,
        prefix + " ''" + closers,
        prefix + "''" + closers,
        prefix + "'')" + closers,
    ]


@lru_cache(maxsize=64)
def _parse_workflow(text: str) -> ir.Workflow | None:
    result = front_end(text, "<completion>")
    for statement in result.program.statements:
        if isinstance(statement, ir.Workflow):
            return statement
    return None


def repaired_workflow(text: str, offset: int) -> ir.Workflow | None:
    """The workflow of the chunk ``text`` as far as ``offset``, with open constructs closed."""
    for candidate in repair(text, offset):
        try:
            workflow = _parse_workflow(candidate)
        except Exception:  # the compiler promises not to raise; an editor must not rely on it
            workflow = None
        if workflow is not None:
            return workflow
    return None
