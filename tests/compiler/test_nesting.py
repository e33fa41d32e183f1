"""Deep nesting: lowering no longer recurses, and refuses what the later stages could not take."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from compiler.api import compile_text, front_end


def calls(depth: int) -> str:
    return "df.seq(" * depth + "'a'" + ", 'b')" * depth


@pytest.mark.parametrize(
    "make",
    [
        calls,
        lambda n: " !> ".join(f"'c{i}' ?> 't{i}'" for i in range(n)) + " !> 'e'",
        lambda n: "@> " * n + "'x'",
        lambda n: "df.retry(" * n + "'a'" + ", 2)" * n,
    ],
    ids=["calls", "else-if", "loops", "retries"],
)
def test_a_compilation_takes_deep_workflows_and_refuses_deeper_ones(
    make: Callable[[int], str],
) -> None:
    deep = compile_text(make(2400))
    assert "DFC111" not in {d.code for d in deep.diagnostics}
    assert "DFC512" in {d.code for d in deep.diagnostics}  # pg_durable's own limit
    deeper = compile_text(make(2600))
    assert "DFC111" in {d.code for d in deeper.diagnostics}
    assert not deeper.program.workflows


def test_the_front_end_alone_keeps_to_the_default_recursion_limit() -> None:
    assert not front_end(calls(240)).diagnostics
    [too_deep] = front_end(calls(300)).diagnostics
    assert too_deep.code == "DFC111"
    assert (too_deep.span.line, too_deep.span.column) == (1, 1)
