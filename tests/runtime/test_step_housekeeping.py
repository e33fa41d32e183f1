"""df.tasks is vacuumed by the worker: every step deletes a task row, and the claim walks the
ready index over the entries of deleted rows until they are vacuumed away."""

from __future__ import annotations

from helpers import start
from plans import single

from runtime.connection import connect
from runtime.store import Store


def test_the_store_vacuums_the_task_table(dsn: str) -> None:
    with connect(dsn) as conn:
        def vacuums() -> int:
            conn.execute("SELECT pg_stat_force_next_flush()")
            row = conn.execute("SELECT vacuum_count FROM pg_stat_user_tables "
                               "WHERE relid = 'df.tasks'::regclass").fetchone()
            assert row is not None
            return int(row[0])

        before = vacuums()
        Store(conn).vacuum_tasks()
        assert vacuums() == before + 1


def test_the_vacuum_leaves_the_task_table_at_its_size(dsn: str) -> None:
    """Cutting off df.tasks' empty end takes an ACCESS EXCLUSIVE lock, which a vacuum waits
    for (up to five seconds) while executors use the table, and holds against all of them once
    it has it: the table stays at its size instead (migration 0034)."""
    iid = start(dsn, single("SELECT 1"))
    with connect(dsn) as conn:
        conn.execute("INSERT INTO df.tasks (instance_id, node_id, status) "
                     "SELECT %s, 'n0', 'waiting' FROM generate_series(1, 5000)", (iid,))
        conn.execute("DELETE FROM df.tasks WHERE id > (SELECT min(id) + 10 FROM df.tasks)")
        size = conn.execute("SELECT pg_relation_size('df.tasks')").fetchone()
        Store(conn).vacuum_tasks()
        assert conn.execute("SELECT pg_relation_size('df.tasks')").fetchone() == size
        assert conn.execute("SELECT count(*) FROM df.tasks").fetchone() == (11,)
