"""``--target pg_durable``: the exact Durofut JSON pg_durable's constructors build (behaviour §4.1)."""

from __future__ import annotations

import pytest

from compiler.api import compile_text
from compiler.durofut import pg_durable_cron, to_durofut

CASES = [
    ("df.sql('SELECT 1')", '{"node_type":"SQL","query":"SELECT 1"}'),
    (
        "'SELECT 1' ~> 'SELECT 2'",
        '{"node_type":"THEN","left_node":{"node_type":"SQL","query":"SELECT 1"},'
        '"right_node":{"node_type":"SQL","query":"SELECT 2"}}',
    ),
    ("'SELECT 1' |=> 'x'", '{"node_type":"SQL","query":"SELECT 1","result_name":"x"}'),
    ("df.sleep(5)", '{"node_type":"SLEEP","query":"5"}'),
    (
        "df.wait_for_signal('approval', 3600)",
        '{"node_type":"SIGNAL","query":"{\\"signal_name\\":\\"approval\\",\\"timeout_seconds\\":3600}"}',
    ),
    (
        "df.wait_for_signal('go')",
        '{"node_type":"SIGNAL","query":"{\\"signal_name\\":\\"go\\",\\"timeout_seconds\\":null}"}',
    ),
    (
        "@> df.break()",
        '{"node_type":"LOOP","left_node":{"node_type":"BREAK","query":"{\\"break_value\\":null}"}}',
    ),
    (
        "df.http('https://api.github.com/repos','get',NULL,'{\"Accept\":\"application/json\"}'::jsonb)",
        '{"node_type":"HTTP","query":"{\\"url\\":\\"https://api.github.com/repos\\",\\"method\\":'
        '\\"GET\\",\\"body\\":null,\\"headers\\":{\\"Accept\\":\\"application/json\\"},'
        '\\"timeout_seconds\\":30}"}',
    ),
    (
        "df.if('SELECT true','SELECT 1','SELECT 2')",
        '{"node_type":"IF","left_node":{"node_type":"SQL","query":"SELECT 1"},"right_node":'
        '{"node_type":"SQL","query":"SELECT 2"},"condition_node":{"node_type":"SQL","query":'
        '"SELECT true"}}',
    ),
    (
        "'SELECT 1' |=> 'doc' ~> df.if_rows('doc','SELECT 1','SELECT 2')",
        '{"node_type":"THEN","left_node":{"node_type":"SQL","query":"SELECT 1","result_name":'
        '"doc"},"right_node":{"node_type":"IF","left_node":{"node_type":"SQL","query":"SELECT 1"},'
        '"right_node":{"node_type":"SQL","query":"SELECT 2"},"query":"{\\"condition_type\\":'
        '\\"result_has_rows\\",\\"result_name\\":\\"doc\\"}"}}',
    ),
    (
        "df.loop('SELECT 1','SELECT false')",
        '{"node_type":"LOOP","left_node":{"node_type":"SQL","query":"SELECT 1"},'
        '"condition_node":{"node_type":"SQL","query":"SELECT false"}}',
    ),
    (
        "df.join3('SELECT 1','SELECT 2','SELECT 3')",
        '{"node_type":"JOIN","left_node":{"node_type":"SQL","query":"SELECT 1"},"right_node":'
        '{"node_type":"SQL","query":"SELECT 2"},"extra_nodes":[{"node_type":"SQL","query":'
        '"SELECT 3"}]}',
    ),
    (
        "df.race('SELECT 1', df.sleep(10))",
        '{"node_type":"RACE","left_node":{"node_type":"SQL","query":"SELECT 1"},"right_node":'
        '{"node_type":"SLEEP","query":"10"}}',
    ),
    (
        "'SELECT 1' | 'SELECT 2' | 'SELECT 3'",
        '{"node_type":"RACE","left_node":{"node_type":"RACE","left_node":{"node_type":"SQL",'
        '"query":"SELECT 1"},"right_node":{"node_type":"SQL","query":"SELECT 2"}},"right_node":'
        '{"node_type":"SQL","query":"SELECT 3"}}',
    ),
    ("'SELECT ''é'''", '{"node_type":"SQL","query":"SELECT \'é\'"}'),
]


def _durofut(source: str) -> tuple[str, list[str]]:
    result = compile_text(source, "x.dsql", optimize=False)
    assert not result.has_errors, result.diagnostics
    text, problems = to_durofut(result.program.workflows[0], result.source)
    return text, [p.code for p in problems]


@pytest.mark.parametrize(("source", "expected"), CASES, ids=[c[0] for c in CASES])
def test_envelope(source: str, expected: str) -> None:
    assert _durofut(source) == (expected, [])


@pytest.mark.parametrize(
    "source",
    [
        "df.retry('SELECT 1', 3)",
        "df.timeout('SELECT 1', 5)",
        "'SELECT 1' <-> 'SELECT 2'",
        "df.wait_for_schedule('0 9 * * *', 'Europe/Paris')",
    ],
)
def test_extensions_are_refused(source: str) -> None:
    assert _durofut(source)[1] == ["DFC602"]


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 9 * * 1-5", "0 9 * * 2-6"),
        ("0 9 * * 0", "0 9 * * 1"),
        ("0 9 * * 7", "0 9 * * 1"),
        ("0 9 * * 5-7", "0 9 * * 6-7,1"),
        ("0 9 * * MON-FRI", "0 9 * * MON-FRI"),
        ("*/5 * * * *", "*/5 * * * *"),
        ("0 9 1 * 1", None),
    ],
)
def test_cron_day_of_week(cron: str, expected: str | None) -> None:
    assert pg_durable_cron(cron) == expected
