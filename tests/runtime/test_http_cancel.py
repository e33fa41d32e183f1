"""A cancelled task's HTTP request is aborted, and its executor is free at once.

The gated test server (:mod:`test_http_outside`) holds each response until the test opens the
gate, so every check runs while the request is known to be in flight. That the executor is free
is shown by work it does next (a worker with one executor runs another instance's step) or by the
task's session lock being given up, all while the held response is still unreleased; nothing is
timed. A request stopped by anything but the cancellation of its own task is not taken for a
cancelled one.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import test_http_outside as outside
from helpers import output, result, start, wait
from plans import PlanBuilder
from timehelpers import (
    LOOPBACK_HTTP,
    make_clock,
    node_status,
    query,
    scalar,
    status,
    until,
    worker_on,
)

from runtime.connection import connect
from runtime.http_client import Abort, Aborted, HttpFailure, HttpSettings, build_request, send

# Guards a join against a hang only; the test does not measure how long anything takes.
HANG_GUARD_SECONDS = 60.0

NO_WAIT = outside.NO_WAIT


class HangupServer(outside.GateServer):
    """The gated server, plus ``/hangup/<gate>``: once the gate opens, the connection is closed
    with no response (the request ends, but nobody cancelled its task)."""

    def route(self, handler: BaseHTTPRequestHandler, record: dict[str, Any]) -> None:
        path = urlsplit(record["path"]).path
        if not path.startswith("/hangup/"):
            super().route(handler, record)
            return
        gate = self.gates[path.rsplit("/", 1)[1]]
        with self._lock:
            gate.keys.append(record["headers"].get("idempotency-key"))
            number = len(gate.keys)
        gate.arrived.release()
        if number <= gate.hold:
            gate.opened.wait(outside.GATE_LIMIT_SECONDS)
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.reply(handler, 200, f"answer {number}".encode(), "text/plain")
        with self._lock:
            gate.answered += 1


@pytest.fixture(scope="module")
def server() -> Iterator[HangupServer]:
    srv = HangupServer()
    srv.start()
    yield srv
    for gate in srv.gates.values():
        gate.opened.set()
    srv.stop()


def held_plan(server: HangupServer, name: str, route: str = "gate") -> tuple[dict[str, Any], str]:
    b = PlanBuilder()
    node = outside.http(b, f"{server.base}/{route}/{name}")
    return b.build(b.seq(node, b.sql("SELECT 1 AS after"))), node


def cancel(dsn: str, instance: str) -> None:
    with connect(dsn) as conn:
        conn.execute(NO_WAIT)  # df.cancel must not wait for the request
        conn.execute("SELECT df.cancel(%s, 'stop it')", (instance,))


def attempts(dsn: str, instance: str, node: str) -> Any:
    return scalar(dsn, "SELECT attempts FROM df.nodes WHERE instance_id = %s AND id = %s",
                  (instance, node))


def last_error(dsn: str, instance: str, node: str) -> Any:
    return scalar(dsn, "SELECT last_error FROM df.nodes WHERE instance_id = %s AND id = %s",
                  (instance, node))


def sent_in_thread(url: str, abort: Abort, settings: HttpSettings = LOOPBACK_HTTP,
                   ) -> tuple[threading.Thread, list[object]]:
    """Send a POST to ``url`` with ``abort`` in a thread; the list gets what send came to."""
    request = build_request({"url": url, "method": "POST", "body": "{}", "timeout_seconds": 300},
                            {}, {}, "key")
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(send(request, settings, abort))
        except (Aborted, HttpFailure) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_abort_stops_a_request_in_flight(server: HangupServer) -> None:
    gate = server.gate("direct")
    abort = Abort()
    thread, outcome = sent_in_thread(f"{server.base}/gate/direct", abort)
    gate.wait_arrival()
    abort.abort()
    thread.join(HANG_GUARD_SECONDS)
    assert not thread.is_alive() and not gate.opened.is_set()
    assert len(outcome) == 1 and isinstance(outcome[0], Aborted)
    gate.opened.set()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for a certificate")
def test_abort_stops_a_request_in_flight_over_tls(tmp_path: Path) -> None:
    """The connection is wrapped by TLS after it is taken hold of: the abort still reaches it."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    arrived, release = threading.Event(), threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(65536)  # the request; no response until released
                arrived.set()
                release.wait(outside.GATE_LIMIT_SECONDS)

        server_thread = threading.Thread(target=serve, daemon=True)
        server_thread.start()
        abort = Abort()
        thread, outcome = sent_in_thread(f"https://127.0.0.1:{port}/held", abort,
                                         replace(LOOPBACK_HTTP, verify_tls=False))
        assert arrived.wait(HANG_GUARD_SECONDS), "no request arrived"
        abort.abort()
        thread.join(HANG_GUARD_SECONDS)
        assert not thread.is_alive() and not release.is_set()
        release.set()
        server_thread.join(HANG_GUARD_SECONDS)
    assert len(outcome) == 1 and isinstance(outcome[0], Aborted)


def test_an_aborted_request_is_not_sent() -> None:
    abort = Abort()
    abort.abort()
    # an address nothing listens on: a request that was sent would fail, not be aborted
    thread, outcome = sent_in_thread("http://127.0.0.1:9/never", abort)
    thread.join(HANG_GUARD_SECONDS)
    assert len(outcome) == 1 and isinstance(outcome[0], Aborted)


def test_a_request_that_fails_by_itself_is_not_aborted(server: HangupServer) -> None:
    gate = server.gate("direct-hangup")
    thread, outcome = sent_in_thread(f"{server.base}/hangup/direct-hangup", Abort())
    gate.wait_arrival()
    gate.opened.set()
    thread.join(HANG_GUARD_SECONDS)
    assert len(outcome) == 1 and isinstance(outcome[0], HttpFailure)
    assert outcome[0].retryable and "HTTP connection failed" in outcome[0].message


def test_cancel_during_the_request_aborts_it_and_frees_the_executor(
        dsn: str, server: HangupServer) -> None:
    gate = server.gate("cancel-free")
    plan, node = held_plan(server, "cancel-free")
    b = PlanBuilder()
    other = b.build(b.sql("SELECT 'free' AS executor"))
    with worker_on(dsn, concurrency=1):
        instance = start(dsn, plan)
        gate.wait_arrival()
        until(lambda: len(outside.lock_holders(dsn)) == 1)
        cancel(dsn, instance)
        # the worker's only executor was sending the request: it runs another instance's step
        # while the response is still held at the server
        second = start(dsn, other)
        assert wait(dsn, second, 60) == "completed", output(dsn, second)
        assert result(dsn, second)["rows"] == [{"executor": "free"}]
        assert outside.lock_holders(dsn) == []
        assert not gate.opened.is_set() and gate.answered == 0
    gate.opened.set()
    assert status(dsn, instance) == "cancelled"
    assert output(dsn, instance) == "stop it"
    assert node_status(dsn, instance, node) == "cancelled"
    assert last_error(dsn, instance, node) is None  # the abort recorded nothing
    assert scalar(dsn, "SELECT count(*) FROM df.tasks WHERE instance_id = %s", (instance,)) == 0
    statuses = [row[0] for row in query(dsn, "SELECT status FROM df.nodes WHERE instance_id = %s",
                                        (instance,))]
    assert "completed" not in statuses
    assert len(gate.keys) == 1


def test_an_unrelated_cancellation_does_not_abort_the_request(
        dsn: str, server: HangupServer) -> None:
    kept = server.gate("kept")
    dropped = server.gate("dropped")
    kept_plan, kept_node = held_plan(server, "kept")
    dropped_plan, _ = held_plan(server, "dropped")
    with worker_on(dsn, concurrency=2):
        first = start(dsn, kept_plan)
        kept.wait_arrival()
        second = start(dsn, dropped_plan)
        dropped.wait_arrival()
        until(lambda: len(outside.lock_holders(dsn)) == 2)
        task = scalar(dsn, "SELECT id FROM df.tasks WHERE instance_id = %s AND node_id = %s",
                      (first, kept_node))
        with connect(dsn) as conn:
            # another task of the same instance, the same task id under another instance, and
            # the other instance itself
            conn.execute("SELECT pg_notify('df_cancel', %s)", (f"{first}:{task + 1_000_000}",))
            conn.execute("SELECT pg_notify('df_cancel', %s)", (f"{second}:{task}",))
        cancel(dsn, second)
        # notifications are heard in order: once the cancelled request is given up, the
        # earlier ones were heard too
        until(lambda: len(outside.lock_holders(dsn)) == 1)
        assert status(dsn, second) == "cancelled"
        assert kept.answered == 0 and status(dsn, first) == "running"
        kept.opened.set()
        assert wait(dsn, first, 60) == "completed", output(dsn, first)
    dropped.opened.set()
    assert result(dsn, first)["rows"] == [{"after": 1}]
    assert len(kept.keys) == 1 and kept.answered == 1
    assert attempts(dsn, first, kept_node) == 1


def test_a_request_the_server_hangs_up_on_is_a_failure_not_a_cancellation(
        dsn: str, server: HangupServer) -> None:
    gate = server.gate("hangup")
    clock = make_clock()
    plan, node = held_plan(server, "hangup", route="hangup")
    with worker_on(dsn, clock, concurrency=1):
        instance = start(dsn, plan)
        gate.wait_arrival()
        gate.opened.set()  # the server closes the connection: the request ends, uncancelled
        until(lambda: last_error(dsn, instance, node) is not None)
        assert "HTTP connection failed" in str(last_error(dsn, instance, node))
        assert status(dsn, instance) == "running"
        clock.advance(60)  # the retry is sent and answered
        assert wait(dsn, instance, 60) == "completed", output(dsn, instance)
    assert attempts(dsn, instance, node) == 2
    assert len(gate.keys) == 2 and gate.keys[0] == gate.keys[1]


def test_a_race_won_elsewhere_aborts_the_request(dsn: str, server: HangupServer) -> None:
    gate = server.gate("race-free")
    b = PlanBuilder()
    node = outside.http(b, f"{server.base}/gate/race-free")
    plan = b.build(b.race(node, b.seq(b.wait_signal("go"), b.sql("SELECT 'other' AS won"))))
    with worker_on(dsn, concurrency=2):
        instance = start(dsn, plan)
        gate.wait_arrival()
        until(lambda: len(outside.lock_holders(dsn)) == 1)
        with connect(dsn) as conn:
            conn.execute(NO_WAIT)
            conn.execute("SELECT df.signal(%s, 'go')", (instance,))
        assert wait(dsn, instance, 60) == "completed", output(dsn, instance)
        # the executor that sent the request gives it up with the response still held
        until(lambda: outside.lock_holders(dsn) == [], message="the request was not aborted")
        assert not gate.opened.is_set() and gate.answered == 0
    gate.opened.set()
    assert result(dsn, instance)["rows"] == [{"won": "other"}]
    assert node_status(dsn, instance, node) == "cancelled"
    assert last_error(dsn, instance, node) is None


def test_a_timeout_around_the_step_aborts_the_request(dsn: str, server: HangupServer) -> None:
    gate = server.gate("timeout-free")
    clock = make_clock()
    b = PlanBuilder()
    node = outside.http(b, f"{server.base}/gate/timeout-free")
    plan = b.build(b._add("timeout", None, body=node, seconds=5))
    with worker_on(dsn, clock, concurrency=2):
        instance = start(dsn, plan)
        gate.wait_arrival()
        until(lambda: len(outside.lock_holders(dsn)) == 1)
        clock.advance(10)  # the timer fires while the request waits at the server
        until(lambda: status(dsn, instance) == "failed")
        until(lambda: outside.lock_holders(dsn) == [], message="the request was not aborted")
        assert not gate.opened.is_set() and gate.answered == 0
    gate.opened.set()
    assert output(dsn, instance) == "timed out after 5 seconds"
    assert node_status(dsn, instance, node) == "cancelled"
    assert last_error(dsn, instance, node) is None
