"""Lowering: call binding against the catalogue, value conversions, statements and naming.

Each case is source text and the IR (spans left out) or the diagnostics it must produce.
"""

from __future__ import annotations

from typing import Any

import pytest

from compiler import ir
from compiler.api import front_end, ir_to_json


def strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k != "span"}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def body(text: str) -> Any:
    result = front_end(text, "t.dsql")
    assert not result.has_errors, [d.message for d in result.diagnostics]
    return strip(ir_to_json(result.program)[-1]["body"])


def codes(text: str) -> list[tuple[str, int]]:
    return [(d.code, d.span.column) for d in front_end(text, "t.dsql").diagnostics]


SQL_A = {"kind": "sql", "sql": "a"}
SQL_B = {"kind": "sql", "sql": "b"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'a' ~> 'b'", {"kind": "seq", "steps": [SQL_A, SQL_B]}),
        ("df.seq('a', 'b')", {"kind": "seq", "steps": [SQL_A, SQL_B]}),
        ("df.seq(b => 'b', a => 'a')", {"kind": "seq", "steps": [SQL_A, SQL_B]}),
        ("df.join('a', b := 'b')", {"kind": "join", "branches": [SQL_A, SQL_B]}),
        ("'a' |=> 'x'", {**SQL_A, "bind": "x"}),
        ("df.as('a', 'x')", {**SQL_A, "bind": "x"}),
        ("df.sql('a')", SQL_A),
        ("df.sleep('7')", {"kind": "sleep", "seconds": 7}),
        ("df.sleep(' 7 '::int)", {"kind": "sleep", "seconds": 7}),
        (
            "df.wait_for_signal('s')",
            {"kind": "wait_signal", "signal": "s", "timeout_seconds": None},
        ),
        (
            "df.wait_for_schedule('0 9 * * 1-5', 'Europe/Paris')",
            {"kind": "wait_schedule", "cron": "0 9 * * 1-5", "time_zone": "Europe/Paris"},
        ),
        (
            "df.http('https://x.example.org')",
            {
                "kind": "http",
                "url": "https://x.example.org",
                "method": None,
                "body": None,
                "headers": None,
                "timeout_seconds": 30,
            },
        ),
        (
            "df.http('u', body => jsonb_build_object('a', -1, 'b', jsonb_build_array(true, NULL)))",
            {
                "kind": "http",
                "url": "u",
                "method": None,
                "body": '{"a":-1,"b":[true,null]}',
                "headers": None,
                "timeout_seconds": 30,
            },
        ),
        (
            "df.http('u', headers => '{\"A\": \"1\"}'::jsonb, timeout_seconds => 5)",
            {
                "kind": "http",
                "url": "u",
                "method": None,
                "body": None,
                "headers": {"A": "1"},
                "timeout_seconds": 5,
            },
        ),
        ("df.break('{\"a\": 1}'::jsonb)", {"kind": "break", "value": '{"a":1}'}),
        ("df.break(TRUE::text)", {"kind": "break", "value": "true"}),
        ("df.break(-1.50::text)", {"kind": "break", "value": "-1.50"}),
        ("df.break(NULL)", {"kind": "break", "value": None}),
        ("df.loop('a', NULL)", {"kind": "loop", "body": SQL_A, "condition": None}),
        ("@> 'a'", {"kind": "loop", "body": SQL_A, "condition": None}),
        (
            "df.retry('a', 3, backoff_factor => 1.5)",
            {
                "kind": "retry",
                "body": SQL_A,
                "max_attempts": 3,
                "initial_delay_seconds": 1.0,
                "backoff_factor": 1.5,
                "max_delay_seconds": 300.0,
            },
        ),
        ("df.timeout('a', '2.5')", {"kind": "timeout", "body": SQL_A, "seconds": 2.5}),
        ("'a' <-> 'b'", {"kind": "undo", "body": SQL_A, "undo": SQL_B}),
        ("df.with_undo(u => 'b', f => 'a')", {"kind": "undo", "body": SQL_A, "undo": SQL_B}),
        (
            "df.if_rows('r', 'a', 'b')",
            {"kind": "if_rows", "result_name": "r", "then": SQL_A, "otherwise": SQL_B},
        ),
        ("'a' || 'b'", {"kind": "sql", "sql": "ab"}),
        ("'a'\n'b'", {"kind": "sql", "sql": "ab"}),
        ("((('a')))", SQL_A),
    ],
)
def test_lowering(text: str, expected: Any) -> None:
    assert body(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("df.sleep(1, 2)", [("DFC202", 13)]),
        ("df.sleep()", [("DFC203", 1)]),
        ("df.sleep(secs => 1)", [("DFC203", 1), ("DFC204", 10)]),
        ("df.sleep(seconds => 1, seconds => 2)", [("DFC205", 24)]),
        ("df.http('u', method => 'GET', NULL)", [("DFC214", 31)]),
        ("df.sleep(1.5)", [("DFC206", 10)]),
        ("df.sleep('soon')", [("DFC206", 10)]),
        ("df.timeout('a', 'x')", [("DFC206", 17)]),
        ("'a' |=> ''", [("DFC207", 9)]),
        ("'a' |=> '1st'", [("DFC207", 9)]),
        ("df.as('a', 5)", [("DFC207", 12)]),
        ("df.http('u', 'GET', NULL, '[1,'::jsonb)", [("DFC208", 30)]),
        ("df.sleep('1 hour'::interval)", [("DFC209", 20)]),
        ("df.sleep('x'::int)", [("DFC209", 10)]),
        ("df.http('u', 'POST', jsonb_build_object('a'))", [("DFC210", 22)]),
        ("df.http('u', 'POST', jsonb_build_object('a', now()))", [("DFC110", 46)]),
        ("SELECT df.status('i')", [("DFC211", 8)]),
        ("'a' ~> df.setvar('x', 'y')", [("DFC212", 8)]),
        ("'a' ~> df.explain('b')", [("DFC212", 8)]),
        ("df.slepe(1)", [("DFC201", 1)]),
        ("pg_sleep(1)", [("DFC110", 1)]),
        # independent mistakes in one call are all reported
        (
            "df.http(NULL, 'GET', NULL, '{'::jsonb, 1.5)",
            [("DFC206", 9), ("DFC208", 29), ("DFC206", 40)],
        ),
        ("df.retry('a' ~> df.slep(1), 1.5)", [("DFC201", 17), ("DFC206", 29)]),
    ],
)
def test_argument_errors(text: str, expected: list[tuple[str, int]]) -> None:
    assert codes(text) == expected


def test_every_error_has_a_hint() -> None:
    text = "\n".join(
        [
            "df.sleep(1, 2);",
            "df.sleep();",
            "df.sleep(secs => 1);",
            "df.sleep(1.5);",
            "'a' |=> '';",
            "df.as('a', 5);",
            "df.sleep('x'::int);",
            "df.sql(NULL);",
            "df.http(NULL);",
            "df.sleep(NULL);",
            "SELECT df.start('a', 5);",
            "SELECT df.start('a', transaction_mode => 'later');",
            "E'\\uZZZZ';",
        ]
    )
    diagnostics = front_end(text).diagnostics
    assert len(diagnostics) >= 13
    assert all(d.hint for d in diagnostics), [d.message for d in diagnostics if not d.hint]


def test_statements_and_workflow_names() -> None:
    text = """
    SELECT df.setvar('base', 'https://x.example.org');
    'SELECT 1';
    SELECT df.start('SELECT 2', 'labelled', 'other_db');
    SELECT df.explain('SELECT 3');
    df.start('SELECT 4', transaction_mode => 'NEW');
    """
    result = front_end(text, "jobs/nightly.dsql")
    assert not result.diagnostics
    statements = result.program.statements
    assert isinstance(statements[0], ir.SetVar)
    assert (statements[0].name.value, statements[0].value.value) == (
        "base",
        "https://x.example.org",
    )
    workflows = result.program.workflows
    assert [(w.name, w.form) for w in workflows] == [
        ("nightly_1", "bare"),
        ("labelled", "start"),
        ("nightly_2", "explain"),
        ("nightly_3", "start"),
    ]
    assert workflows[1].database is not None and workflows[1].database.value == "other_db"
    assert workflows[3].transaction_mode == "new"
    assert result.program.variables["base"].value.value == "https://x.example.org"


def test_single_unlabelled_workflow_takes_the_file_name() -> None:
    result = front_end("'SELECT 1'", "reports/daily.dsql")
    assert result.program.workflows[0].name == "daily"


def test_setvar_with_a_name_no_reference_can_use_warns() -> None:
    result = front_end("SELECT df.setvar('my-var', '1')")
    assert [(d.code, d.severity.value) for d in result.diagnostics] == [("DFC210", "warning")]


def test_renaming_a_result_warns_and_keeps_the_last_name() -> None:
    result = front_end("('a' |=> 'x') |=> 'y'")
    assert [d.code for d in result.diagnostics] == ["DFC213"]
    assert result.program.workflows[0].body.bind is not None
    assert result.program.workflows[0].body.bind.value == "y"


def test_sql_text_maps_back_to_the_file() -> None:
    text = "'a' ~>\n  E'SELECT\\n  ''x'' FROM t'\n  '  WHERE y'"
    result = front_end(text)
    step = result.program.workflows[0].body
    assert isinstance(step, ir.Seq)
    sql = step.steps[1]
    assert isinstance(sql, ir.Sql)
    assert sql.sql.value == "SELECT\n  'x' FROM t  WHERE y"
    for word in ("FROM", "WHERE", "x"):
        index = sql.sql.value.index(word)
        offset = sql.sql.file_offset(index)
        assert text[offset : offset + len(word)] == word
