"""Statements that cannot run in a transaction block run at least once, as the submitter."""

from __future__ import annotations

from helpers import eventually, output, result, run, running_worker, start
from plans import PlanBuilder

from runtime.connection import connect


def test_vacuum_and_concurrent_index(dsn: str) -> None:
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE items (x int)")
    b = PlanBuilder()
    root = b.seq(
        b.sql("INSERT INTO items SELECT generate_series(1, 100)"),
        b.sql("VACUUM ANALYZE items", transactional=False),
        b.sql("CREATE INDEX CONCURRENTLY items_x ON items (x)", transactional=False),
        b.sql("SELECT count(*) AS n, to_regclass('items_x') IS NOT NULL AS indexed FROM items"),
    )
    # CREATE INDEX CONCURRENTLY waits for every open transaction, so do not sit in
    # df.await_instance (one long statement) while it runs: poll instead
    with running_worker(dsn), connect(dsn) as conn:
        iid = start(dsn, b.build(root))

        def done() -> bool:
            row = conn.execute("SELECT df.status(%s)", (iid,)).fetchone()
            return row is not None and row[0] in ("completed", "failed")

        eventually(done, timeout=60)
    assert result(dsn, iid) == {"rows": [{"n": 100, "indexed": True}], "row_count": 1}, output(dsn, iid)


def test_vacuum_result_and_first_step(dsn: str) -> None:
    b = PlanBuilder()
    iid, status, res = run(dsn, b.build(b.sql("VACUUM", transactional=False)))
    assert status == "completed", output(dsn, iid)
    assert res == {"rows": [], "row_count": 0}


def test_code_running_statements_are_refused_outside_a_transaction(dsn: str) -> None:
    b = PlanBuilder()
    iid, status, _ = run(dsn, b.build(b.sql("DO $$ BEGIN RESET ROLE; END $$", transactional=False)))
    assert status == "failed"
    assert "cannot run outside a transaction block" in (output(dsn, iid) or "")


def test_failing_statement_outside_a_transaction(dsn: str) -> None:
    b = PlanBuilder()
    iid, status, _ = run(dsn, b.build(b.sql("VACUUM no_such_table", transactional=False)))
    assert status == "failed"
    assert "no_such_table" in (output(dsn, iid) or "")
