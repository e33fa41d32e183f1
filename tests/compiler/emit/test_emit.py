"""Plans: every example program compiles to schema-valid, deterministic plans (snapshotted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from compiler.api import compile_text
from compiler.emit import dumps, plan_hash
from tests.compiler.emit.plan_schema import assert_valid_plan

PROGRAMS = sorted((Path(__file__).parent / "programs").glob("*.dsql"))
EXAMPLES = sorted((Path(__file__).parents[3] / "examples").glob("*.dsql"))


def _compile(path: Path, optimize: bool = True) -> list[dict[str, object]]:
    result = compile_text(path.read_text("utf-8"), path.name, optimize=optimize)
    errors = [d for d in result.diagnostics if d.is_error]
    assert not errors, errors
    assert len(result.plans) == len(result.program.workflows)
    return result.plans


@pytest.mark.parametrize("path", PROGRAMS + EXAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("optimize", [True, False], ids=["O1", "O0"])
def test_plans_are_schema_valid(path: Path, optimize: bool) -> None:
    for plan in _compile(path, optimize):
        assert_valid_plan(plan)
        assert plan["hash"] == plan_hash(plan)


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_plans_snapshot(path: Path, snapshot: SnapshotAssertion) -> None:
    plans = _compile(path)
    assert "".join(dumps(plan) for plan in plans) == snapshot


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_output_is_deterministic(path: Path) -> None:
    first = "".join(dumps(p) for p in _compile(path))
    second = "".join(dumps(p) for p in _compile(path))
    assert first == second


def test_hash_ignores_compiler_and_depends_on_content() -> None:
    plan = compile_text("SELECT df.start('SELECT 1', 'a');", "x.dsql").plans[0]
    assert plan_hash({**plan, "compiler": "dfc 9.9.9"}) == plan["hash"]
    other = compile_text("SELECT df.start('SELECT 2', 'a');", "x.dsql").plans[0]
    assert other["hash"] != plan["hash"]


def test_names_and_defaults() -> None:
    source = "SELECT df.setvar('t', 'orders');\n'SELECT * FROM {t}';\n'SELECT {sys_label}'"
    plans = compile_text(source, "jobs.dsql").plans
    assert [p["name"] for p in plans] == ["jobs_1", "jobs_2"]
    assert plans[0]["variables"] == {"used": ["t"], "defaults": {"t": "orders"}}
    assert plans[1]["variables"] == {"used": [], "defaults": {}}


def test_non_transactional_statements_are_marked() -> None:
    source = "'CREATE INDEX CONCURRENTLY i ON t (a)' ~> 'CALL p()' ~> 'SELECT 1'"
    nodes = compile_text(source, "x.dsql").plans[0]["nodes"]
    marks = [(n["transactional"], n["at_least_once"]) for n in nodes if n["kind"] == "sql"]
    assert marks == [(False, True), (False, True), (True, False)]


def test_columns_are_inferred() -> None:
    source = (
        "'SELECT a, b AS c, count(*), t.d, 1 FROM t' ~> 'SELECT * FROM t' ~> "
        "'INSERT INTO t VALUES (1) RETURNING id' ~> 'UPDATE t SET a = 1' ~> 'VALUES (1, 2)'"
    )
    nodes = compile_text(source, "x.dsql", optimize=False).plans[0]["nodes"]
    assert [n["columns"] for n in nodes if n["kind"] == "sql"] == [
        ["a", "c", "count", "d", "?column?"],
        None,
        ["id"],
        [],
        ["column1", "column2"],
    ]


def test_no_plans_when_there_are_errors() -> None:
    result = compile_text("'SELEC 1'", "x.dsql")
    assert result.has_errors
    assert result.plans == []
