"""Result and variable names: the quick identifier test agrees with the identifier pattern."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.builders import IDENTIFIER, is_identifier


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="aZ_09$é ٣\n\tßİ", max_size=8) | st.text(max_size=8))
def test_is_identifier_matches_the_pattern(name: str) -> None:
    assert is_identifier(name) == bool(IDENTIFIER.match(name))


def test_examples() -> None:
    assert [is_identifier(n) for n in ("total", "_x1", "1x", "", "a-b", "é", "a\n", "if")] == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        True,
    ]
