"""Helpers for runtime tests: a background worker and running plans to completion."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runtime.connection import connect
from runtime.worker import Worker, WorkerOptions


@contextmanager
def running_worker(dsn: str, concurrency: int = 2) -> Iterator[Worker]:
    worker = Worker(dsn, WorkerOptions(concurrency=concurrency, statement_timeout_ms=30_000))
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        worker.join(30)


def start(dsn: str, plan: dict[str, Any] | str, label: str | None = None) -> str:
    fut = plan if isinstance(plan, str) else json.dumps(plan)
    with connect(dsn) as conn:
        row = conn.execute("SELECT df.start(%s, %s)", (fut, label)).fetchone()
        assert row is not None
        return str(row[0])


def wait(dsn: str, instance_id: str, timeout: float = 30.0) -> str:
    with connect(dsn) as conn:
        row = conn.execute("SELECT df.await_instance(%s, %s)", (instance_id, int(timeout))).fetchone()
        assert row is not None
        return str(row[0])


def result(dsn: str, instance_id: str) -> Any:
    with connect(dsn) as conn:
        row = conn.execute("SELECT df.result(%s)::jsonb", (instance_id,)).fetchone()
        return None if row is None else row[0]


def output(dsn: str, instance_id: str) -> str | None:
    with connect(dsn) as conn:
        row = conn.execute("SELECT output FROM df.instances WHERE id = %s", (instance_id,)).fetchone()
        return None if row is None else row[0]


def run(dsn: str, plan: dict[str, Any] | str, timeout: float = 30.0) -> tuple[str, str, Any]:
    """Start ``plan`` and wait for it with a worker; (id, status, result)."""
    with running_worker(dsn):
        instance_id = start(dsn, plan)
        status = wait(dsn, instance_id, timeout)
    return instance_id, status, result(dsn, instance_id)


def eventually(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)
