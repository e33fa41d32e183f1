"""The step a worker goes on with runs in the message that commits the step before it.

When that step is not used after all (another worker took its task in between), the
transaction it ran in is rolled back, and the worker's session stays usable: psycopg deallocates
every prepared statement on rollback, and the worker must prepare its own again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from helpers import start
from plans import single

from runtime.connection import WorkerConnection, connect
from runtime.store import Store


@contextmanager
def _warm_session(dsn: str) -> Iterator[tuple[WorkerConnection, Store, int]]:
    """A worker session that has prepared its statements, psycopg its own among them, and the
    task of a pending instance to write to."""
    instance = start(dsn, single("SELECT 1"))
    conn = connect(dsn, worker=True)
    assert isinstance(conn, WorkerConnection)
    store = Store(conn)
    try:
        task_id = int(conn.execute("SELECT id FROM df.tasks WHERE instance_id = %s",
                                   (instance,)).fetchone()[0])  # type: ignore[index]
        for n in range(6):  # psycopg prepares a statement it runs often; the worker its own
            conn.execute("SELECT %s::int", (n,))
            with conn.transaction():
                store.update_task_state(task_id, {"n": n})
        names = {r[0] for r in conn.execute("SELECT name FROM pg_prepared_statements")}
        assert "dfc_update_task_state" in names or "dfc_apply" in names
        assert any(not name.startswith("dfc_") for name in names)
        yield conn, store, task_id
    finally:
        conn.close()


def _state(conn: WorkerConnection, task_id: int) -> tuple[str] | None:
    return conn.execute("SELECT state ->> 'n' FROM df.tasks WHERE id = %s",
                        (task_id,)).fetchone()


def test_a_discarded_step_run_ahead_leaves_the_session_usable(dsn: str) -> None:
    with _warm_session(dsn) as (conn, store, task_id):
        with conn.transaction():
            store.update_task_state(task_id, {"n": "ahead"})
        # as if the commit had run a step ahead that did get its task
        conn.prefetched = (task_id, (True, {}, [], None, None, None))
        conn.discard_prefetched()
        with conn.transaction():
            store.update_task_state(task_id, {"n": "after"})
        assert _state(conn, task_id) == ("after",)


def test_the_worker_prepares_its_statements_again_after_any_rollback(dsn: str) -> None:
    """A message that stops at an error (a chain whose step was not taken, a commit that failed)
    is rolled back with psycopg's own rollback, which deallocates every prepared statement of
    the session when psycopg had prepared some: the worker's are gone with them."""
    with _warm_session(dsn) as (conn, store, task_id):
        with conn.cursor() as cur, pytest.raises(psycopg.errors.DivisionByZero):
            cur.execute(b"BEGIN; SELECT 1 / 0")
        conn.rollback()
        for n in range(2):
            with conn.transaction():
                store.update_task_state(task_id, {"n": f"after {n}"})
        assert _state(conn, task_id) == ("after 1",)
