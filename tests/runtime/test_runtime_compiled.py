"""Plans made by the compiler (compiler.api.compile_text) run as the DSL promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import output, run

from compiler.api import compile_text
from runtime.connection import connect

ROOT = Path(__file__).resolve().parents[2]


def compiled(source: str) -> dict[str, object]:
    result = compile_text(source, "test.dsql")
    errors = [d for d in result.diagnostics if d.is_error]
    assert not errors, errors
    assert len(result.plans) == 1
    return result.plans[0]


def test_hello_example(dsn: str) -> None:
    plan = compiled((ROOT / "examples" / "hello.dsql").read_text())
    _, status, res = run(dsn, plan)
    assert (status, res) == ("completed", {"rows": [{"next": 43}], "row_count": 1})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("SELECT df.start('SELECT 1 AS a' & 'SELECT 2 AS a')",
         [{"rows": [{"a": 1}], "row_count": 1}, {"rows": [{"a": 2}], "row_count": 1}]),
        ("SELECT df.start('SELECT true' ?> 'SELECT 1 AS r' !> 'SELECT 2 AS r')",
         {"rows": [{"r": 1}], "row_count": 1}),
        ("SELECT df.start('SELECT 5 AS n' |=> 'x' ~> 'SELECT $x * 2 AS d')",
         {"rows": [{"d": 10}], "row_count": 1}),
        ("SELECT df.start(df.sleep(0) ~> 'SELECT ''{sys_label}'' AS l', 'lbl')",
         {"rows": [{"l": "lbl"}], "row_count": 1}),
    ],
)
def test_dsl_forms(dsn: str, source: str, expected: object) -> None:
    iid, status, res = run(dsn, compiled(source))
    assert status == "completed", output(dsn, iid)
    assert res == expected


def test_explain_shows_full_sql_and_markers(dsn: str) -> None:
    long_sql = "SELECT 1 AS a_column_with_a_rather_long_name, 2 AS another_long_column_name_here"
    iid, status, _ = run(dsn, compiled(f"SELECT df.start('{long_sql}' ~> 'SELECT 1/0', 'ex')"))
    assert status == "failed"
    with connect(dsn) as conn:
        row = conn.execute("SELECT df.explain(%s)", (iid,)).fetchone()
    assert row is not None
    text = row[0]
    assert text.startswith(f"Instance: {iid} (ex)\nStatus:   ✗ failed")
    assert f"SQL: {long_sql} ✓" in text
    assert "→ SQL: SELECT 1/0 ✗" in text


def test_dfc_run_exit_codes(dsn: str, tmp_path: Path) -> None:
    good = tmp_path / "good.dsql"
    good.write_text("SELECT df.start('SELECT 42 AS answer', 'good');\n")
    bad = tmp_path / "bad.dsql"
    bad.write_text("SELECT df.start('SELECT 1/0', 'bad');\n")
    env = {"DFC_DSN": dsn, "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "dfc", "run", "--no-progress", str(good)],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert '{"rows":[{"answer":42}],"row_count":1}' in ok.stdout
    failed = subprocess.run([sys.executable, "-m", "dfc", "run", "--no-progress", str(bad)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert "division by zero" in failed.stdout
    status = subprocess.run([sys.executable, "-m", "dfc", "status", "ffffffff"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 1 and "DFC808" in status.stderr and "Traceback" not in status.stderr
