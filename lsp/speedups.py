"""Start-up and per-keystroke cost of the compiler's Lark lexer, paid once instead of always.

Lark proves at construction time that no two terminals of the grammar can collide, using the
``interegular`` package; for this grammar's Unicode-range terminals the proof takes tens of
seconds, and ``Lark.lex(dont_ignore=True)`` (which the compiler calls once per parse to keep
comments) builds and proves a fresh lexer on every call. The proof is about the grammar file,
not about the input, and the test suite and ``dfc check`` run it; a long-running server that
re-proves it on every keystroke would be unusable. :func:`install` therefore turns the proof
off for this process only. It changes no result: the lexer is the same, only unchecked again.
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    """Skip Lark's terminal-collision proof in this process (idempotent)."""
    global _installed
    if _installed:
        return
    import lark.lexer

    def _skip(*_args: Any, **_kwargs: Any) -> None:
        return None

    lark.lexer._check_regex_collisions = _skip
    _installed = True
