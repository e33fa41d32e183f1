"""The applications of the runtime benchmark: a process of its own that keeps a number of
workflow instances in flight, as that many clients would, each starting an instance with
``df.start`` (its own connection and transaction) and starting the next one once it finished.

    python benchmarks/bench_clients.py DSN CONCURRENCY CHAINS PLAN_JSON [backlog]

First it runs CONCURRENCY instances (a warm-up: the worker loads the plan), then prints
``ready`` and waits for a line on stdin; then it runs CHAINS instances and prints the seconds
they took and the CPU seconds it used meanwhile, and exits after one more line. With
``backlog``, the CHAINS instances are started at once instead, in one transaction, and the
seconds from its commit until the last one finished are printed: how fast the worker's executors
work through a queue of instances, without waiting for new ones. One connection looks for the
instances in flight that finished, every millisecond, in one query, and hands each to the client
waiting for it. (Not a notification per finished instance: PostgreSQL serializes the commits
of transactions that notify, each holding a database-wide lock until its commit record is
flushed, so a notifying trigger on the workflows' last steps would slow down what is measured.)
A separate process, so that neither its CPU nor its turns at the interpreter's lock count as the
worker's.
"""

from __future__ import annotations

import sys
import threading
import time

import psycopg


class Clients:
    def __init__(self, dsn: str, concurrency: int, plan: str) -> None:
        self.dsn = dsn
        self.concurrency = concurrency
        self.plan = plan
        self.running: set[str] = set()
        self.finished: set[str] = set()
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.watcher = psycopg.connect(dsn, autocommit=True)
        self.watching = threading.Thread(target=self._watch, daemon=True)
        self.watching.start()
        self.connections = [psycopg.connect(dsn, autocommit=True) for _ in range(concurrency)]

    def _watch(self) -> None:
        while not self.stopping.is_set():
            with self.changed:
                running = list(self.running)
            if running:
                done = self.watcher.execute(
                    "SELECT id FROM df.instances WHERE id = ANY (%s)"
                    " AND status IN ('completed', 'failed', 'cancelled')", (running,)).fetchall()
                if done:
                    with self.changed:
                        for (instance,) in done:
                            self.running.discard(instance)
                            self.finished.add(instance)
                        self.changed.notify_all()
            time.sleep(0.001)

    def run(self, chains: int) -> float:
        """Run ``chains`` instances, ``concurrency`` at a time; the seconds it took."""
        left = [chains]
        lock = threading.Lock()

        def client(conn: psycopg.Connection) -> None:
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                row = conn.execute("SELECT df.start(%s)", (self.plan,)).fetchone()
                assert row is not None
                with self.changed:
                    self.running.add(row[0])
                    while row[0] not in self.finished:
                        self.changed.wait()
                    self.finished.discard(row[0])

        began = time.perf_counter()
        threads = [threading.Thread(target=client, args=(conn,)) for conn in self.connections]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - began

    def backlog(self, chains: int) -> float:
        """Start ``chains`` instances in one transaction; the seconds from its commit until
        the last one finished."""
        conn = self.connections[0]
        with conn.transaction():
            ids = [row[0] for row in conn.execute(
                "SELECT df.start(%s) FROM generate_series(1, %s)", (self.plan, chains))]
        began = time.perf_counter()
        with self.changed:
            self.running.update(ids)
            while not self.finished.issuperset(ids):
                self.changed.wait()
        return time.perf_counter() - began

    def close(self) -> None:
        self.stopping.set()
        self.watching.join()
        for conn in [*self.connections, self.watcher]:
            conn.close()


def main() -> None:
    dsn, concurrency, chains, plan = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    backlog = sys.argv[5:] == ["backlog"]
    clients = Clients(dsn, concurrency, plan)
    try:
        clients.run(concurrency)
        print("ready", flush=True)
        sys.stdin.readline()
        cpu = time.process_time()
        elapsed = clients.backlog(chains) if backlog else clients.run(chains)
        print(elapsed, time.process_time() - cpu, flush=True)
        sys.stdin.readline()  # the benchmark reads the CPU its connections used first
    finally:
        clients.close()


if __name__ == "__main__":
    main()
