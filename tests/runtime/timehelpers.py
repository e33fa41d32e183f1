"""Helpers for tests of time and events: a worker on a test clock, and reading node rows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from runtime.clock import Clock, TestClock
from runtime.connection import connect
from runtime.http_client import HttpSettings
from runtime.ssrf import NetworkPolicy
from runtime.worker import Worker, WorkerOptions

# Later than any real "now": rows the database stamps with its own clock are never in the
# test clock's future (docs/schedules.md).
EPOCH = datetime(2100, 1, 4, tzinfo=UTC)  # a Monday
LOOPBACK_HTTP = HttpSettings(network=NetworkPolicy.parse("127.0.0.0/8, ::1"))


def make_clock(start: datetime = EPOCH) -> TestClock:
    return TestClock(start)


@contextmanager
def worker_on(dsn: str, clock: Clock | None = None, concurrency: int = 2,
              http: HttpSettings = LOOPBACK_HTTP, **options: Any) -> Iterator[Worker]:
    opts = WorkerOptions(concurrency=concurrency, statement_timeout_ms=60_000, http=http,
                         **options)
    if clock is not None:
        opts.clock = clock
    worker = Worker(dsn, opts)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        worker.join(30)


def query(dsn: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        cur = conn.execute(sql, params)
        return list(cur.fetchall()) if cur.description is not None else []


def scalar(dsn: str, sql: str, params: Any = None) -> Any:
    rows = query(dsn, sql, params)
    return rows[0][0] if rows else None


def status(dsn: str, instance_id: str) -> str | None:
    value = scalar(dsn, "SELECT df.status(%s)", (instance_id,))
    return None if value is None else str(value)


def node_status(dsn: str, instance_id: str, node_id: str) -> str | None:
    value = scalar(dsn, "SELECT status FROM df.nodes WHERE instance_id = %s AND id = %s",
                   (instance_id, node_id))
    return None if value is None else str(value)


def until(check: Any, timeout: float = 30.0, message: str = "condition not reached") -> None:
    """Poll ``check`` (real time) until it is true; the bound only guards against hangs."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.02)


def due_at(dsn: str, instance_id: str, node_id: str) -> datetime | None:
    """When the ready task of ``node_id`` is due (None when it has none)."""
    value = scalar(dsn, "SELECT run_at FROM df.tasks WHERE instance_id = %s AND node_id = %s "
                        "AND status = 'ready'", (instance_id, node_id))
    return None if value is None else value.astimezone(UTC)


def drive(dsn: str, clock: TestClock, instance_id: str, step: float = 60.0,
          timeout: float = 60.0) -> str:
    """Advance the test clock in steps until the instance finishes; its final status."""
    deadline = time.monotonic() + timeout
    while True:
        current = status(dsn, instance_id)
        if current in ("completed", "failed", "cancelled"):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"instance {instance_id} still {current}")
        clock.advance(step)
        time.sleep(0.05)
