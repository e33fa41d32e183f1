"""Statements that cannot run in a transaction block run at least once, as the submitter."""

from __future__ import annotations

from helpers import eventually, output, result, run, running_worker, start, wait
from plans import PlanBuilder, single

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


def test_a_drop_or_alter_outside_a_transaction_leaves_the_workers_session_usable(
    dsn: str
) -> None:
    """psycopg deallocates every prepared statement of a session after a statement whose
    command tag is DROP … or ALTER … when it had prepared some of its own: the worker's go with
    them, and it must prepare them again instead of naming statements that are gone."""
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE dropped_later (x int)")
        conn.execute("CREATE INDEX dropped_later_x ON dropped_later (x)")
    b = PlanBuilder()
    steps = [b.sql(f"INSERT INTO dropped_later VALUES ({n})") for n in range(16)]
    plan = b.build(b.seq(*steps[:8],
                         b.sql("DROP INDEX CONCURRENTLY dropped_later_x", transactional=False),
                         *steps[8:],
                         b.sql("SELECT count(*) AS n, to_regclass('dropped_later_x') AS idx"
                               " FROM dropped_later")))
    with running_worker(dsn, concurrency=1), connect(dsn) as conn:
        # the session's statements are prepared, psycopg's own among them (after 5 uses)
        for instance in [start(dsn, single("SELECT 1")) for _ in range(8)]:
            assert wait(dsn, instance, 30) == "completed"
        iid = start(dsn, plan)

        def done() -> bool:
            row = conn.execute("SELECT df.status(%s)", (iid,)).fetchone()
            return row is not None and row[0] in ("completed", "failed")

        eventually(done, timeout=60)
        again = start(dsn, single("SELECT 1 AS one"))  # the same worker session
        status = wait(dsn, again, 30)
    assert result(dsn, iid) == {"rows": [{"n": 16, "idx": None}], "row_count": 1}, output(dsn, iid)
    assert status == "completed", output(dsn, again)
