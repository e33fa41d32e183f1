"""df.tasks is vacuumed by the worker: every step deletes a task row, and the claim walks the
ready index over the entries of deleted rows until they are vacuumed away."""

from __future__ import annotations

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
