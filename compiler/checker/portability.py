"""Placeholder."""

from __future__ import annotations

from compiler.checker.context import CheckContext


def check(ctx: CheckContext) -> None:
    return None
