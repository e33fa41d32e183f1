"""HTTP steps send their request with no transaction open and no row lock held.

The test server holds each response of a *gate* until the test opens it, so every check runs
while a request is known to be in flight: the worker's session is not in a transaction,
``df.cancel`` and ``df.signal`` return while the request waits, a late response is dropped (a
cancelled task's request is aborted, see ``test_http_cancel.py``), and a worker whose session
dies mid-request is replaced by another that sends the request again with the same
``Idempotency-Key``. No durations are measured: a call that waited for the request
would wait for a gate the test has not opened yet (and run into the session's
``statement_timeout``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from helpers import output, result, start, wait
from httpserver import TestServer
from plans import PlanBuilder
from timehelpers import due_at, make_clock, node_status, query, scalar, status, until, worker_on

from runtime.connection import connect

ROOT = Path(__file__).resolve().parents[2]
# A gate the test forgets to open must not hang the server thread for ever.
GATE_LIMIT_SECONDS = 120.0
# Calls that must not wait for the request: a waiting one fails with this (the gate stays shut).
NO_WAIT = "SET statement_timeout = '30s'"
# The session lock a worker holds on a task while its work runs outside a transaction.
TASK_LOCK_CLASS = 1147489352


@dataclass
class Gate:
    """Responses of ``/gate/<name>``: the first ``hold`` requests wait until :attr:`opened`."""

    hold: int = 1
    opened: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    keys: list[str | None] = field(default_factory=list)
    answered: int = 0

    def wait_arrival(self) -> None:
        assert self.arrived.acquire(timeout=60), "no request arrived at the gate"


class GateServer(TestServer):
    """The shared test server with gated routes: ``/gate/<name>`` answers ``200 answer <n>``
    to its n-th request, once the gate is open (or at once past the first ``hold``)."""

    def __init__(self) -> None:
        super().__init__()
        self.gates: dict[str, Gate] = {}

    def gate(self, name: str, hold: int = 1) -> Gate:
        self.gates[name] = Gate(hold)
        return self.gates[name]

    def route(self, handler: BaseHTTPRequestHandler, record: dict[str, Any]) -> None:
        path = urlsplit(record["path"]).path
        if not path.startswith("/gate/"):
            super().route(handler, record)
            return
        gate = self.gates[path.rsplit("/", 1)[1]]
        with self._lock:
            gate.keys.append(record["headers"].get("idempotency-key"))
            number = len(gate.keys)
        gate.arrived.release()
        if number <= gate.hold:
            gate.opened.wait(GATE_LIMIT_SECONDS)
        with contextlib.suppress(OSError):  # the worker may be gone
            self.reply(handler, 200, f"answer {number}".encode(), "text/plain")
        with self._lock:
            gate.answered += 1


@pytest.fixture(scope="module")
def server() -> Iterator[GateServer]:
    srv = GateServer()
    srv.start()
    yield srv
    for gate in srv.gates.values():
        gate.opened.set()
    srv.stop()


def http(b: PlanBuilder, url: str, bind: str | None = None) -> str:
    return b._add("http", bind, url=url, method="POST", body='{"order": 1}', headers=None,
                  timeout_seconds=300)


def lock_holders(dsn: str) -> list[int]:
    """Backends holding a task's session lock (running a step's work outside a transaction)."""
    rows = query(dsn, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
                      "AND granted AND database = (SELECT oid FROM pg_database "
                      "WHERE datname = current_database())", (TASK_LOCK_CLASS,))
    return [int(row[0]) for row in rows]


def test_no_transaction_and_no_row_lock_while_the_request_is_in_flight(
        dsn: str, server: GateServer) -> None:
    gate = server.gate("quiet")
    b = PlanBuilder()
    node = http(b, f"{server.base}/gate/quiet", bind="r")
    plan = b.build(b.seq(node, b.sql("SELECT $r.body AS body")))
    with worker_on(dsn, concurrency=1, application_name="dfc-quiet"):
        instance = start(dsn, plan)
        gate.wait_arrival()
        until(lambda: len(lock_holders(dsn)) == 1)
        [holder] = lock_holders(dsn)
        session = query(dsn, "SELECT state, xact_start, backend_xid, backend_xmin "
                             "FROM pg_stat_activity WHERE pid = %s", (holder,))
        assert session == [("idle", None, None, None)]
        # (the worker's listener runs single autocommit statements: never idle in one)
        idle_in_transaction = scalar(
            dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dfc-quiet' "
                 "AND state LIKE 'idle in transaction%%'")
        assert idle_in_transaction == 0
        # the task's row is free: nobody holds it while the request runs
        with connect(dsn) as conn:
            conn.execute(NO_WAIT)
            with conn.transaction():
                rows = conn.execute("SELECT id FROM df.tasks WHERE instance_id = %s "
                                    "AND node_id = %s FOR UPDATE NOWAIT",
                                    (instance, node)).fetchall()
        assert len(rows) == 1
        assert not gate.opened.is_set()
        gate.opened.set()
        assert wait(dsn, instance, 60) == "completed", output(dsn, instance)
    assert result(dsn, instance)["rows"] == [{"body": "answer 1"}]
    assert lock_holders(dsn) == []


def test_cancel_during_the_request_returns_at_once_and_drops_the_response(
        dsn: str, server: GateServer) -> None:
    gate = server.gate("cancel")
    b = PlanBuilder()
    node = http(b, f"{server.base}/gate/cancel")
    plan = b.build(b.seq(node, b.sql("SELECT 1 AS after")))
    with worker_on(dsn, concurrency=2):
        instance = start(dsn, plan)
        gate.wait_arrival()
        with connect(dsn) as conn:
            conn.execute(NO_WAIT)
            message = conn.execute("SELECT df.cancel(%s, 'stop it')", (instance,)).fetchone()
            assert message is not None and "cancelled" in message[0]
            assert not gate.opened.is_set()  # the request is still waiting at the server
            assert conn.execute("SELECT df.status(%s)", (instance,)).fetchone() == ("cancelled",)
        assert node_status(dsn, instance, node) == "cancelled"
        gate.opened.set()
        # the cancellation aborted the request (test_http_cancel.py): the server's late answer
        # goes nowhere and the worker has given up the task's lock
        until(lambda: gate.answered == 1 and lock_holders(dsn) == [])
    assert status(dsn, instance) == "cancelled"
    assert output(dsn, instance) == "stop it"
    assert node_status(dsn, instance, node) == "cancelled"
    assert scalar(dsn, "SELECT count(*) FROM df.tasks WHERE instance_id = %s", (instance,)) == 0
    nodes = dict(query(dsn, "SELECT id, status FROM df.nodes WHERE instance_id = %s",
                       (instance,)))
    assert "completed" not in nodes.values()
    assert len(gate.keys) == 1


def test_signal_during_the_request_does_not_wait(dsn: str, server: GateServer) -> None:
    gate = server.gate("signal")
    b = PlanBuilder()
    plan = b.build(b.seq(http(b, f"{server.base}/gate/signal", bind="r"),
                         b.wait_signal("go", bind="s")))
    with worker_on(dsn, concurrency=2):
        instance = start(dsn, plan)
        gate.wait_arrival()
        with connect(dsn) as conn:
            conn.execute(NO_WAIT)
            reply = conn.execute("SELECT df.signal(%s, 'go', '{\"n\": 7}')",
                                 (instance,)).fetchone()
            assert reply == ("OK",)
        assert not gate.opened.is_set()
        gate.opened.set()
        assert wait(dsn, instance, 60) == "completed", output(dsn, instance)
    assert result(dsn, instance)["data"] == {"n": 7}


def test_no_other_worker_sends_the_request_while_it_is_in_flight(
        dsn: str, server: GateServer) -> None:
    gate = server.gate("single")
    clock = make_clock()
    b = PlanBuilder()
    node = http(b, f"{server.base}/gate/single")
    plan = b.build(node)
    with worker_on(dsn, clock, concurrency=2), worker_on(dsn, clock, concurrency=2):
        instance = start(dsn, plan)
        gate.wait_arrival()
        for _ in range(3):
            # the task falls due for the other executors, which look at it and put it off
            clock.advance(60)
            until(lambda: (due_at(dsn, instance, node) or clock.now()) > clock.now())
        assert len(gate.keys) == 1
        gate.opened.set()
        until(lambda: status(dsn, instance) == "completed")
    assert len(gate.keys) == 1
    assert result(dsn, instance)["body"] == "answer 1"


def test_a_session_terminated_mid_request_is_retried_with_the_same_key(
        dsn: str, server: GateServer) -> None:
    gate = server.gate("terminated")
    b = PlanBuilder()
    plan = b.build(http(b, f"{server.base}/gate/terminated"))
    with worker_on(dsn, concurrency=1, application_name="dfc-first"):
        instance = start(dsn, plan)
        gate.wait_arrival()
        until(lambda: len(lock_holders(dsn)) == 1)
        [holder] = lock_holders(dsn)
        with worker_on(dsn, concurrency=1, application_name="dfc-second"):
            assert scalar(dsn, "SELECT pg_terminate_backend(%s)", (holder,)) is True
            gate.wait_arrival()  # sent again by the other worker, and answered at once
            assert wait(dsn, instance, 60) == "completed", output(dsn, instance)
            assert result(dsn, instance)["body"] == "answer 2"
            gate.opened.set()  # the first worker's late response goes nowhere
            until(lambda: gate.answered == 2)
    assert len(gate.keys) == 2 and gate.keys[0] == gate.keys[1]
    assert gate.keys[0] is not None and gate.keys[0].startswith(f"dfc-{instance}-")
    assert status(dsn, instance) == "completed"


def test_a_worker_killed_mid_request_is_replaced_and_the_request_sent_again(
        dsn: str, server: GateServer) -> None:
    gate = server.gate("killed")
    b = PlanBuilder()
    plan = b.build(http(b, f"{server.base}/gate/killed"))
    instance = start(dsn, plan)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dfc", "worker", "--dsn", dsn, "--concurrency", "1",
             "--http-allow", "127.0.0.1"],
            cwd=ROOT, stdout=log, stderr=log, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            if not gate.arrived.acquire(timeout=120):
                log.seek(0)
                raise AssertionError("the worker sent no request: "
                                     + log.read().decode(errors="replace")[-2000:])
            until(lambda: len(lock_holders(dsn)) == 1)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(30)
    with worker_on(dsn, concurrency=1):
        gate.wait_arrival()
        assert wait(dsn, instance, 60) == "completed", output(dsn, instance)
    gate.opened.set()
    assert result(dsn, instance)["body"] == "answer 2"
    assert len(gate.keys) == 2 and gate.keys[0] == gate.keys[1]


def test_retries_of_an_outside_request_are_counted(dsn: str, server: GateServer) -> None:
    clock = make_clock()
    b = PlanBuilder()
    node = http(b, f"{server.base}/flaky/outside2?fail=1")
    plan = b.build(node)
    with worker_on(dsn, clock):
        instance = start(dsn, plan)
        # the failed first attempt is recorded; the next one waits for the clock
        until(lambda: scalar(dsn, "SELECT last_error FROM df.nodes WHERE instance_id = %s "
                                  "AND id = %s", (instance, node)) is not None)
        assert len(server.keys["outside2"]) == 1
        details = scalar(dsn, "SELECT status_details FROM df.instance_nodes(%s) "
                              "WHERE node_id = %s", (instance, node))
        clock.advance(60)
        until(lambda: status(dsn, instance) == "completed")
    assert "returned 503" in json.dumps(details)
    assert scalar(dsn, "SELECT attempts FROM df.nodes WHERE instance_id = %s AND id = %s",
                  (instance, node)) == 2
    keys = server.keys["outside2"]
    assert len(keys) == 2 and keys[0] == keys[1]


def test_a_race_won_elsewhere_during_the_request_drops_its_response(
        dsn: str, server: GateServer) -> None:
    gate = server.gate("race")
    b = PlanBuilder()
    node = http(b, f"{server.base}/gate/race")
    plan = b.build(b.race(node, b.seq(b.wait_signal("go"), b.sql("SELECT 'other' AS won"))))
    with worker_on(dsn, concurrency=2):
        instance = start(dsn, plan)
        gate.wait_arrival()
        with connect(dsn) as conn:
            conn.execute(NO_WAIT)
            conn.execute("SELECT df.signal(%s, 'go')", (instance,))
        # the other branch runs and the instance finishes while the request is still waiting
        assert wait(dsn, instance, 60) == "completed", output(dsn, instance)
        assert not gate.opened.is_set()
        gate.opened.set()
        until(lambda: gate.answered == 1 and lock_holders(dsn) == [])
    assert result(dsn, instance)["rows"] == [{"won": "other"}]
    assert node_status(dsn, instance, node) == "cancelled"
    assert len(gate.keys) == 1


def test_multipart_requests_go_the_same_way(dsn: str, server: GateServer) -> None:
    b = PlanBuilder()
    node = b._add("http_multipart", None, url=f"{server.base}/echo", method="POST",
                  parts=[{"name": "file", "filename": "a.txt", "data_b64": "aGVsbG8=",
                          "content_type": "text/plain"}],
                  headers=None, timeout_seconds=30)
    with worker_on(dsn, concurrency=1):
        instance = start(dsn, b.build(node))
        assert wait(dsn, instance, 60) == "completed", output(dsn, instance)
    seen = json.loads(result(dsn, instance)["body"])
    assert seen["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert 'name="file"; filename="a.txt"' in seen["body"] and "hello" in seen["body"]
    assert seen["headers"]["idempotency-key"].startswith(f"dfc-{instance}-")
    assert lock_holders(dsn) == []


def test_a_timeout_during_the_request_fails_the_step_at_once(dsn: str, server: GateServer) -> None:
    gate = server.gate("timeout")
    clock = make_clock()
    b = PlanBuilder()
    node = http(b, f"{server.base}/gate/timeout")
    plan = b.build(b._add("timeout", None, body=node, seconds=5))
    with worker_on(dsn, clock, concurrency=2):
        instance = start(dsn, plan)
        gate.wait_arrival()
        clock.advance(10)  # the timer fires while the request waits at the server
        until(lambda: status(dsn, instance) == "failed")
        assert not gate.opened.is_set()
        assert node_status(dsn, instance, node) == "cancelled"
        gate.opened.set()
        until(lambda: gate.answered == 1 and lock_holders(dsn) == [])
    assert output(dsn, instance) == "timed out after 5 seconds"
    assert node_status(dsn, instance, node) == "cancelled"
    assert scalar(dsn, "SELECT count(*) FROM df.tasks WHERE instance_id = %s", (instance,)) == 0
