"""``$name`` references: the one-pattern reader agrees with the rules spelled out step by step."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.refs import Ref, _parse_ref, scan_sql

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def spelled_out(text: str, start: int, context: str) -> Ref | None:
    """A name after $, then .* (a row set), or .column, each but .* optionally followed by ?."""
    match = _NAME.match(text, start + 1)
    if match is None:
        return None
    name, pos = match.group(0), match.end()
    if text.startswith(".*", pos):
        return Ref(name, None, True, False, start, pos + 2, context)
    if text.startswith(".", pos):
        column = _NAME.match(text, pos + 1)
        if column is not None:
            end = column.end()
            nullsafe = text.startswith("?", end)
            return Ref(name, column.group(0), False, nullsafe, start, end + nullsafe, context)
    if text.startswith("?", pos):
        return Ref(name, None, False, True, start, pos + 1, context)
    return Ref(name, None, False, False, start, pos, context)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="$ab_1.*?x -'", max_size=20))
def test_reference_reader_matches_the_rules(tail: str) -> None:
    text = "$" + tail
    assert _parse_ref(text, 0, "code") == spelled_out(text, 0, "code")


def test_masked_sql_keeps_positions() -> None:
    scan = scan_sql("SELECT $a.b?, $c.* FROM t WHERE x = $d")
    assert [r.spelled for r in scan.refs] == ["$a.b?", "$c.*", "$d"]
    assert len(scan.masked) == len("SELECT $a.b?, $c.* FROM t WHERE x = $d")
    assert scan.masked == "SELECT 'xxx', ____ FROM t WHERE x = ''"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="$ab_1.*?x -'\"{}/E\n", max_size=40))
def test_masking_replaces_exactly_the_references(text: str) -> None:
    scan = scan_sql(text)
    assert len(scan.masked) == len(text)
    masked = [False] * len(text)
    for ref in scan.refs:
        if ref.context == "code":
            masked[ref.start : ref.end] = [True] * (ref.end - ref.start)
    for var in scan.variables:
        masked[var.start] = masked[var.end - 1] = True
        assert scan.masked[var.start] == scan.masked[var.end - 1] == "_"
    for index, changed in enumerate(masked):
        if not changed:
            assert scan.masked[index] == text[index]
