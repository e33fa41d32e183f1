"""``dfc explain``: trees of the example programs (snapshots) and the layout rules."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from compiler.api import compile_text
from compiler.explain import explain_json, explain_text

PROGRAMS = sorted((Path(__file__).parents[1] / "emit" / "programs").glob("*.dsql"))


def _workflows(source: str, optimize: bool = False) -> list:  # type: ignore[type-arg]
    result = compile_text(source, "x.dsql", optimize=optimize)
    assert not result.has_errors, result.diagnostics
    assert result.optimized is not None
    return list(result.optimized.workflows)


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_explain_text(path: Path, snapshot: SnapshotAssertion) -> None:
    workflows = _workflows(path.read_text("utf-8"), optimize=True)
    assert "\n\n".join(explain_text(w) for w in workflows) == snapshot


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_explain_json(path: Path, snapshot: SnapshotAssertion) -> None:
    workflows = _workflows(path.read_text("utf-8"), optimize=True)
    data = [explain_json(w) for w in workflows]
    assert json.loads(json.dumps(data)) == data
    assert data == snapshot


def test_layout_matches_pg_durable_dry_run() -> None:
    source = (
        "('SELECT 1' |=> 'a') ~> ('SELECT 2' |=> 'b') ~> "
        "df.if('SELECT $a > 0', 'SELECT ''yes''', 'SELECT ''no''')"
    )
    assert explain_text(_workflows(source)[0]) == "\n".join(
        [
            "SQL: SELECT 1 |=> 'a'",
            "→ SQL: SELECT 2 |=> 'b'",
            "→ IF",
            "    ? condition:",
            "      └─SQL: SELECT $a > 0",
            "    ✓ then:",
            "      └─SQL: SELECT 'yes'",
            "    ✗ else:",
            "      └─SQL: SELECT 'no'",
        ]
    )


def test_join_and_race_branches() -> None:
    source = (
        "df.join3('SELECT 1', df.sleep(5), df.wait_for_signal('go', 60)) ~> "
        "(df.break('done') | df.http('https://api.github.com/x', 'GET'))"
    )
    text = explain_text(_workflows(f"@> ({source})")[0])
    assert "\n".join(text.split("\n")[2:]) == "\n".join(
        [
            "      └─JOIN (3)",
            "            ║ branch 1:",
            "              ├─SQL: SELECT 1",
            "            ║ branch 2:",
            "              ├─SLEEP 5s",
            "            ║ branch 3:",
            "              └─SIGNAL 'go' (60s)",
            "        → RACE",
            "            ║ branch 1:",
            "              ├─BREAK 'done'",
            "            ║ branch 2:",
            "              └─HTTP GET https://api.github.com/x",
        ]
    )


def test_sql_is_never_truncated() -> None:
    sql = "SELECT " + ", ".join(f"column_{i}" for i in range(40)) + " FROM a_table"
    assert explain_text(_workflows(f"'{sql}'")[0]) == f"SQL: {sql}"


def test_multi_line_sql_is_indented_under_its_first_line() -> None:
    text = explain_text(_workflows("'SELECT 1' ~> $$SELECT a,\n       b\n  FROM t$$")[0])
    assert text.split("\n") == [
        "SQL: SELECT 1",
        "→ SQL: SELECT a,",
        "            b",
        "       FROM t",
    ]


def test_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dfc.commands.explain import run_file

    path = tmp_path / "w.dsql"
    path.write_text("SELECT df.start('SELECT 1' ~> df.sleep(2), 'w');", "utf-8")
    args = argparse.Namespace(file=str(path), format="text", workflow=None, optimize=1)
    assert run_file(args) == 0
    assert capsys.readouterr().out == "SQL: SELECT 1\n→ SLEEP 2s\n"
    args.format = "json"
    assert run_file(args) == 0
    assert json.loads(capsys.readouterr().out)[0]["workflow"] == "w"
    args.workflow = "other"
    assert run_file(args) == 1
