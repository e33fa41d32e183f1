"""A failing SQL step is recorded while its task is still held.

The step's statement runs under a subtransaction (df._run_step_task): a failure rolls back only
the step's own effects, and the attempt, its error and the backoff before the next attempt are
recorded in the same transaction, with the task still locked. No other executor can run the
task again in between, without its backoff and without the attempt being counted.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from helpers import start
from plans import PlanBuilder
from timehelpers import make_clock, query, scalar

from runtime.connection import WorkerConnection, connect
from runtime.engine import StepFailed
from runtime.store import Store
from runtime.worker import Worker, WorkerOptions, _Slot


def _transient_failure(sequence: str) -> str:
    # nextval is not rolled back: the sequence counts how often the statement ran
    return (f"DO $$ BEGIN PERFORM nextval('{sequence}'); "
            "RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$")


class _TwoExecutors(Worker):
    """Two executors (connections) of one worker, driven one step at a time. The moment a
    failed step would be recorded in a transaction of its own, the other executor takes its
    turn: before, it could claim the task right there and run it again."""

    def __init__(self, dsn: str, options: WorkerOptions) -> None:
        super().__init__(dsn, options)
        self.other: psycopg.Connection[Any] | None = None
        self.other_ran: list[bool] = []

    def _record_failure(self, conn: psycopg.Connection[Any], failed: StepFailed) -> None:
        if self.other is not None and not self.other_ran:
            self.other_ran.append(self._step(self.other))
        super()._record_failure(conn, failed)


def test_a_failed_attempt_is_recorded_before_another_executor_can_claim(dsn: str) -> None:
    clock = make_clock()  # stands still: a retry's backoff never passes
    scalar(dsn, "CREATE SEQUENCE runs_a")
    b = PlanBuilder()
    step = b.sql(_transient_failure("runs_a"))
    instance = start(dsn, b.build(step))
    worker = _TwoExecutors(dsn, WorkerOptions(clock=clock))
    first = connect(dsn, worker=True)
    worker.other = connect(dsn, worker=True)
    try:
        assert worker._step(first)  # the attempt fails
        # the other executor's turn, right after it: nothing is due, the retry waits
        assert not worker._step(worker.other)
        assert worker.other_ran in ([], [False])
    finally:
        first.close()
        worker.other.close()
    assert scalar(dsn, "SELECT last_value FROM runs_a") == 1  # ran once
    assert query(dsn, "SELECT attempts, last_error FROM df.nodes WHERE instance_id = %s "
                      "AND id = %s", (instance, step)) == [(1, "SQL execution failed: conflict")]
    assert query(dsn, "SELECT state ->> 'attempts', run_at > %s FROM df.tasks "
                      "WHERE instance_id = %s", (clock.now(), instance)) == [("2", True)]
    assert scalar(dsn, "SELECT df.status(%s)", (instance,)) == "running"


def test_a_failed_step_leaves_no_session_state_behind(dsn: str) -> None:
    b = PlanBuilder()
    step = b.sql("SELECT pg_advisory_lock(4711), set_config('work_mem', '77MB', false), 1 / 0")
    instance = start(dsn, b.build(step))
    worker = Worker(dsn, WorkerOptions())
    conn = connect(dsn, worker=True)
    try:
        assert worker._step(conn)
        assert conn.execute("SHOW work_mem").fetchone() != ("77MB",)
        with connect(dsn) as other:
            assert other.execute("SELECT pg_try_advisory_lock(4711)").fetchone() == (True,)
    finally:
        conn.close()
    assert scalar(dsn, "SELECT df.status(%s)", (instance,)) == "failed"
    assert scalar(dsn, "SELECT output FROM df.instances WHERE id = %s",
                  (instance,)) == "SQL execution failed: division by zero"


def test_a_step_taken_by_id_is_skipped_when_held_or_not_due(dsn: str) -> None:
    scalar(dsn, "CREATE SEQUENCE runs_c")
    b = PlanBuilder()
    instance = start(dsn, b.build(b.sql("SELECT nextval('runs_c')")))
    task_id = int(scalar(dsn, "SELECT id FROM df.tasks WHERE instance_id = %s", (instance,)))
    role = int(scalar(dsn, "SELECT oid FROM pg_roles WHERE rolname = current_user"))
    conn = connect(dsn, worker=True)
    assert isinstance(conn, WorkerConnection)
    store = Store(conn)
    try:
        with connect(dsn) as holder, holder.transaction():
            holder.execute("SELECT 1 FROM df.tasks WHERE id = %s FOR UPDATE", (task_id,))
            with conn.transaction():
                run = store.run_step(task_id, role, "SELECT nextval('runs_c')", True, "public",
                                     lock=True)
            assert not run.got
        scalar(dsn, "UPDATE df.tasks SET run_at = now() + interval '1 hour' WHERE id = %s",
               (task_id,))
        with conn.transaction():
            run = store.run_step(task_id, role, "SELECT nextval('runs_c')", True, "public",
                                 lock=True)
        assert not run.got
        scalar(dsn, "UPDATE df.tasks SET run_at = now() WHERE id = %s", (task_id,))
        with conn.transaction():
            run = store.run_step(task_id, role, "SELECT nextval('runs_c') AS n", True, "public",
                                 lock=True)
        assert run.got and run.rows == [{"n": 1}] and run.state == {}
    finally:
        conn.close()
    assert scalar(dsn, "SELECT last_value FROM runs_c") == 1


@pytest.mark.parametrize("after", [0, 1], ids=["alone", "beginning-a-chain"])
def test_a_refused_first_step_fails_alone_under_its_savepoint(dsn: str, after: int) -> None:
    # the first step runs in the transaction that starts the instance, under a savepoint sent
    # with its statement: the refusal rolls back to it, the start stays and the failure is
    # recorded (in the same transaction; or, where the step begins a chain, in the next one,
    # as a chained step's is); the step's prepared statement is gone with the rest
    b = PlanBuilder()
    step = b.sql("PREPARE mine AS SELECT 1")
    instance = start(dsn, b.build(b.seq(step, *[b.sql("SELECT 2") for _ in range(after)])))
    worker = Worker(dsn, WorkerOptions())
    conn = connect(dsn, worker=True)
    slot = _Slot()  # the executor's: it carries what the chain left to the next step
    try:
        for _ in range(1 + after):
            assert worker._step(conn, slot)
            names = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
            assert ("mine",) not in names
    finally:
        conn.close()
    assert scalar(dsn, "SELECT df.status(%s)", (instance,)) == "failed"
    assert query(dsn, "SELECT status FROM df.nodes WHERE instance_id = %s AND id = %s",
                 (instance, step)) == [("failed",)]
    assert "may not PREPARE or DEALLOCATE" in str(
        scalar(dsn, "SELECT output FROM df.instances WHERE id = %s", (instance,)))


def test_a_step_refused_in_the_message_that_commits_the_one_before(dsn: str) -> None:
    # the second step runs in the message that commits the first: the refusal stops that
    # message after the commit, and the step fails on its own, recorded like any other
    scalar(dsn, "CREATE TABLE effects_r (k text)")
    b = PlanBuilder()
    second = b.sql("PREPARE mine AS SELECT 1")
    instance = start(dsn, b.build(b.seq(b.sql("INSERT INTO effects_r VALUES ('first')"),
                                        second, b.sql("INSERT INTO effects_r VALUES ('third')"))))
    worker = Worker(dsn, WorkerOptions())
    conn = connect(dsn, worker=True)
    slot = _Slot()  # an executor's: it remembers the step to go on with
    try:
        while worker._step(conn, slot):
            pass
        names = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
        assert ("mine",) not in names
    finally:
        conn.close()
    assert scalar(dsn, "SELECT df.status(%s)", (instance,)) == "failed"
    assert query(dsn, "SELECT k FROM effects_r") == [("first",)]
    assert query(dsn, "SELECT status, attempts FROM df.nodes WHERE instance_id = %s AND id = %s",
                 (instance, second)) == [("failed", 1)]
