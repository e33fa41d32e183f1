"""Completion as a pure function: contexts, scoping of $names, columns, variables."""

from __future__ import annotations

import pytest
from lsp_helpers import with_cursor
from lsprotocol import types as lsp

from lsp.completion import complete

SCOPES = """SELECT df.setvar('region', 'eu');
SELECT df.start(
    'SELECT 1 AS id, 2 AS total' |=> 'first'
    ~> ('SELECT 2 AS x' |=> 'left' & 'SELECT $│' |=> 'right')
    ~> 'SELECT 3' |=> 'later',
    'one'
);
SELECT df.start('SELECT 1' |=> 'other', 'two');
"""


def labels(marked: str, **kwargs: object) -> list[str]:
    state, pos = with_cursor(marked)
    return [item.label for item in complete(state, pos, **kwargs).items]  # type: ignore[arg-type]


def test_names_bound_earlier_on_the_path_only() -> None:
    found = labels(SCOPES)
    assert "$first" in found
    assert "$left" not in found  # sibling JOIN branch
    assert "$right" not in found  # bound by this very step
    assert "$later" not in found  # bound later
    assert "$other" not in found  # another workflow


def test_names_after_a_join_include_every_branch() -> None:
    marked = SCOPES.replace("'SELECT $│'", "'SELECT 9'").replace("'SELECT 3'", "'SELECT $│'")
    found = labels(marked)
    assert {"$first", "$left", "$right"} <= set(found)


def test_if_branches_do_not_see_each_other() -> None:
    text = "SELECT df.start('SELECT true' |=> 'c' ?> 'SELECT 1' |=> 't' !> 'SELECT $│', 'w');"
    found = labels(text)
    assert "$c" in found and "$t" not in found


def test_names_while_the_statement_does_not_parse_yet() -> None:
    text = "SELECT df.start('SELECT 1 AS a' |=> 'one' ~> 'SELECT 2' |=> 'two' & 'SELECT $│"
    found = labels(text)
    assert "$one" in found and "$two" not in found


def test_columns_after_name_dot() -> None:
    text = "SELECT df.start('SELECT 1 AS id, 2 AS total' |=> 'o' ~> 'SELECT $o.│', 'w');"
    assert labels(text) == ["id", "total"]


def test_envelope_fields_of_non_sql_steps() -> None:
    text = "SELECT df.start(df.wait_for_signal('go') |=> 's' ~> 'SELECT $s.│', 'w');"
    assert labels(text) == ["signal_name", "timed_out", "data"]
    text = (
        "SELECT df.start(df.http('https://x.test') |=> 'h' ~> df.http('https://x.test/$h.│'), 'w');"
    )
    assert "status" in labels(text)


def test_variables_after_brace() -> None:
    found = labels("SELECT df.setvar('region', 'eu');\nSELECT df.start('SELECT {│', 'w');")
    assert found[:1] == ["{region}"]
    assert "{sys_instance_id}" in found and "{sys_label}" in found


def test_statement_functions_only_at_statement_start() -> None:
    at_start = labels("SELECT df.│")
    assert {"df.start", "df.setvar", "df.explain", "df.sleep"} <= set(at_start)
    inside = labels("SELECT df.start('SELECT 1' ~> df.│")
    assert "df.sleep" in inside and "df.start" not in inside and "df.setvar" not in inside
    assert "df.status" not in inside  # management functions are not steps


def test_function_items_are_snippets_with_docs() -> None:
    state, pos = with_cursor("SELECT df.start(df.sl│")
    item = next(i for i in complete(state, pos).items if i.label == "df.sleep")
    assert item.insert_text_format == lsp.InsertTextFormat.Snippet
    assert isinstance(item.text_edit, lsp.TextEdit)
    assert item.text_edit.new_text == "df.sleep(${1:seconds})$0"
    assert isinstance(item.documentation, lsp.MarkupContent)
    assert "Waits durably" in item.documentation.value
    plain = next(i for i in complete(state, pos, snippets=False).items if i.label == "df.sleep")
    assert plain.insert_text_format == lsp.InsertTextFormat.PlainText


def test_operators_inside_expressions() -> None:
    found = labels("SELECT df.start('SELECT 1' │")
    assert {"~>", "&", "|", "|=>", "?>"} <= set(found)


def test_sql_keywords_inside_sql_strings() -> None:
    found = labels("SELECT df.start('SELECT 1 FR│', 'w');")
    assert "FROM" in found


@pytest.mark.parametrize(
    "marked",
    [
        "-- a comment df.│\nSELECT 1;",
        "SELECT df.start(df.wait_for_schedule('0 9 * │'), 'w');",
        "SELECT df.start('SELECT 1' |=> 'na│', 'w');",
    ],
)
def test_nothing_where_nothing_fits(marked: str) -> None:
    assert labels(marked) == []


def test_if_rows_offers_names_in_its_name_argument() -> None:
    found = labels(
        "SELECT df.start('SELECT 1' |=> 'rows' ~> df.if_rows('│', 'SELECT 1', 'SELECT 2'), 'w');"
    )
    assert found == ["$rows"]
