"""An error of the worker's own database session (not of a step: a step's errors are caught in
SQL and recorded as its failures) rolls back what the worker was doing. The instance's work is
taken again on a new session, a few times, before the instance fails with an internal error:
a glitch of the worker must not fail a workflow, and a defect must not loop forever."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest
from helpers import eventually, output, running_worker, start, wait
from plans import PlanBuilder, single

import runtime.worker
from runtime.connection import connect
from runtime.store import Store


@pytest.fixture
def seen(dsn: str) -> str:
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS session_seen (k text)")
        conn.execute("GRANT ALL ON session_seen TO PUBLIC")
    return "session_seen"


def _failing_run_step(monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    """Store.run_step raises an error of the session ``times`` times, after the step ran (its
    effects are in the transaction that the error rolls back)."""
    calls: list[int] = []
    real = Store.run_step

    def run_step(self: Store, *args: Any, **kwargs: Any) -> Any:
        ran = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) <= times:
            raise psycopg.errors.InvalidSqlStatementName('prepared statement "dfc_x" does not exist')
        return ran

    monkeypatch.setattr(Store, "run_step", run_step)
    return calls


def _rows(dsn: str, key: str) -> int:
    with connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM session_seen WHERE k = %s", (key,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_glitch_of_the_workers_session_is_taken_again_on_a_new_one(
    dsn: str, seen: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = _failing_run_step(monkeypatch, times=1)
    with caplog.at_level(logging.WARNING, logger="dfc.worker"), running_worker(dsn, concurrency=1):
        instance = start(dsn, single("INSERT INTO session_seen VALUES ('glitch') RETURNING k"))
        status = wait(dsn, instance, 30)
    assert status == "completed", output(dsn, instance)
    assert len(calls) == 2
    assert _rows(dsn, "glitch") == 1  # the first run was rolled back
    assert any("taking it again on a new session" in r.getMessage() for r in caplog.records)


def test_an_error_of_the_session_every_time_fails_the_instance_in_the_end(
    dsn: str, seen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _failing_run_step(monkeypatch, times=1000)
    with running_worker(dsn, concurrency=1):
        instance = start(dsn, single("INSERT INTO session_seen VALUES ('defect') RETURNING k"))
        status = wait(dsn, instance, 30)
    assert status == "failed"
    assert "internal error in the dfc worker" in (output(dsn, instance) or "")
    assert len(calls) == runtime.worker.SESSION_RETRIES + 1
    assert _rows(dsn, "defect") == 0


def test_a_glitch_of_the_session_around_a_step_outside_a_transaction_runs_it_again(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = Store.run_outside_transaction

    def run_outside_transaction(self: Store, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise psycopg.errors.InvalidSqlStatementName(
                'prepared statement "dfc_become_role" does not exist')
        real(self, *args, **kwargs)

    monkeypatch.setattr(Store, "run_outside_transaction", run_outside_transaction)
    b = PlanBuilder()
    with running_worker(dsn, concurrency=1):
        instance = start(dsn, b.build(b.sql("VACUUM", transactional=False)))
        status = wait(dsn, instance, 30)
    assert status == "completed", output(dsn, instance)
    assert len(calls) == 2


def test_an_executor_outlives_an_error_outside_any_task(
    dsn: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An error where no task's handling catches it (here: looking for the next timer before
    going idle) costs the executor its session, not its life: with one executor, work started
    afterwards still runs."""
    calls: list[int] = []
    real = Store.seconds_until_due

    def seconds_until_due(self: Store) -> float | None:
        calls.append(1)
        if len(calls) == 1:
            raise psycopg.errors.InvalidSqlStatementName(
                'prepared statement "dfc_next_due" does not exist')
        return real(self)

    monkeypatch.setattr(Store, "seconds_until_due", seconds_until_due)
    with caplog.at_level(logging.ERROR, logger="dfc.worker"), running_worker(dsn, concurrency=1):
        eventually(lambda: len(calls) >= 1)
        instance = start(dsn, single("SELECT 1 AS one"))
        status = wait(dsn, instance, 30)
    assert status == "completed", output(dsn, instance)
    assert any("internal error in an executor" in r.getMessage() for r in caplog.records)


def test_the_listener_outlives_an_error_of_its_own(
    dsn: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The listener (notifications, heartbeat, retention) logs an error that is not the
    database's and goes on: the worker's heartbeat keeps coming."""
    calls: list[int] = []
    real = Store.heartbeat

    def heartbeat(self: Store, worker_id: str, steps: int) -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a defect in the heartbeat")
        return real(self, worker_id, steps)

    monkeypatch.setattr(Store, "heartbeat", heartbeat)
    monkeypatch.setattr(runtime.worker, "HEARTBEAT_SECONDS", 0.05)
    with caplog.at_level(logging.ERROR, logger="dfc.worker"), running_worker(dsn, concurrency=1):
        eventually(lambda: len(calls) >= 3)
    assert any("internal error in the listener" in r.getMessage() for r in caplog.records)
