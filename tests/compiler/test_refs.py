"""``$name`` references: the one-pattern reader agrees with the rules spelled out step by step."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.refs import Ref, _parse_ref, scan_sql, scan_text

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


def test_references_know_the_literal_they_are_in() -> None:
    text = "SELECT $a, 'x $b', e'$c\\'', $q$ $d $e $q$, \"$f\" -- $g"
    scan = scan_sql(text)
    by_name = {ref.name: ref for ref in scan.refs}
    assert sorted(by_name) == ["a", "b", "c", "d", "e"]
    assert by_name["a"].literal is None
    string = by_name["b"].literal
    assert string is not None
    assert (text[string.start : string.end], string.quote, string.extended) == ("x $b", "'", False)
    extended = by_name["c"].literal
    assert extended is not None
    assert (text[extended.start : extended.end], extended.extended) == ("$c\\'", True)
    body = by_name["d"].literal
    assert body is not None and body is by_name["e"].literal
    assert (text[body.start : body.end], body.quote) == (" $d $e ", "$q$")
    assert all(ref.literal is None for ref in scan_text(text).refs)


def test_unterminated_literals_run_to_the_end() -> None:
    for text, quote in (("SELECT '$a", "'"), ("SELECT $$ $a", "$$"), ("SELECT E'$a\\'", "'")):
        (ref,) = scan_sql(text).refs
        assert ref.literal is not None
        assert (ref.literal.quote, ref.literal.end) == (quote, len(text))


def test_the_literal_is_not_part_of_what_a_reference_is() -> None:
    """Equality, hashing and repr are those of the reference alone, as before it was added."""
    (in_string,) = scan_sql("SELECT '$a'").refs
    alone = Ref("a", None, False, False, 8, 10, "string")
    assert in_string == alone and hash(in_string) == hash(alone)
    assert repr(in_string) == repr(alone)
    assert "literal" not in repr(in_string)
