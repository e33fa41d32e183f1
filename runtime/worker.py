"""The worker: claims due tasks and executes them, one transaction per step.

A worker process runs ``concurrency`` executor threads (one connection each) and one listener
thread (``LISTEN df_work``). An executor thread repeatedly claims one task and runs it through
the engine inside a single transaction, so a SQL step's effects, its result and the scheduling of
what comes next commit together, or not at all. When there is nothing to claim the thread sleeps
until the earliest timer is due or a notification arrives; it never polls.

Crashes lose nothing: an uncommitted step is rolled back by PostgreSQL and its task becomes
claimable again. ``stop()`` (SIGTERM/SIGINT in ``run``) lets in-flight steps finish, then exits.
Lost connections are re-established with backoff.
"""

from __future__ import annotations

import logging
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import psycopg

from runtime.connection import connect
from runtime.engine import Context, Settings
from runtime.executors import EXECUTORS
from runtime.plans import Plan, PlanError
from runtime.queries import query
from runtime.store import Claim, Store

log = logging.getLogger("dfc.worker")

# An idle worker re-checks at least this often (work released by a crashed worker sends no
# notification).
MAX_IDLE_SECONDS = 5.0


@dataclass
class WorkerOptions:
    concurrency: int = 1
    statement_timeout_ms: int = 300_000
    application_name: str = "dfc-worker"


class Worker:
    def __init__(self, dsn: str, options: WorkerOptions | None = None,
                 on_step: Callable[[str], None] | None = None) -> None:
        self.dsn = dsn
        self.options = options or WorkerOptions()
        self.on_step = on_step
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._generation = 0
        self._threads: list[threading.Thread] = []
        self._plans: dict[int, Plan | PlanError] = {}
        self.steps_done = 0

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the threads and return."""
        self._threads = [threading.Thread(target=self._listen, name="dfc-listener", daemon=True)]
        for index in range(self.options.concurrency):
            self._threads.append(
                threading.Thread(target=self._execute, name=f"dfc-executor-{index}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Ask the threads to finish their current step and exit."""
        self._stop.set()
        self.wake()

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def run(self) -> None:
        """Run until SIGTERM or SIGINT (main thread only)."""
        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: finishing in-flight steps", signum)
            self.stop()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not self._stop.wait(1.0):
                pass
            self.join()
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- wake-ups ---------------------------------------------------------------------------

    def wake(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _sleep(self, generation: int, seconds: float) -> None:
        with self._cond:
            if self._generation == generation and not self._stop.is_set():
                self._cond.wait(max(0.0, min(seconds, MAX_IDLE_SECONDS)))

    def _listen(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with connect(self.dsn, application_name=self.options.application_name) as conn:
                    conn.execute(query("listen"))
                    backoff = 0.1
                    self.wake()  # anything sent while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.wake()
            except psycopg.Error as exc:
                log.warning("listener connection lost (%s); reconnecting", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    # --- executing --------------------------------------------------------------------------

    def _execute(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        backoff = 0.1
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = connect(self.dsn, worker=True,
                                   application_name=self.options.application_name)
                    backoff = 0.1
                generation = self._generation
                if self._step(conn):
                    continue
                seconds = Store(conn).seconds_until_due()
                self._sleep(generation, MAX_IDLE_SECONDS if seconds is None else seconds)
            except psycopg.OperationalError as exc:
                log.warning("database connection lost (%s); reconnecting", exc)
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        if conn is not None:
            conn.close()

    def _plan(self, store: Store, plan_id: int) -> Plan | PlanError:
        plan = self._plans.get(plan_id)
        if plan is None:
            stored = store.load_plan(plan_id)
            try:
                plan = Plan.from_json(stored.id, stored.version, stored.plan)
            except PlanError as exc:
                plan = exc
            self._plans[plan_id] = plan
        return plan

    def _step(self, conn: psycopg.Connection[Any]) -> bool:
        """Claim and run one task; False when there was nothing to do."""
        store = Store(conn)
        claim: Claim | None = None
        failure: tuple[str, str] | None = None
        try:
            with conn.transaction():
                claim = store.claim()
                if claim is None:
                    return False
                self._run_claim(store, claim)
        except psycopg.OperationalError:
            raise
        except Exception as exc:  # a defect in the runtime must not loop on one task forever
            if conn.broken:
                raise
            log.error("internal error running a task:\n%s", traceback.format_exc())
            failure = (claim.instance.id if claim else "", f"internal error in the dfc worker: {exc}")
        if failure is not None and failure[0]:
            with conn.transaction():
                store.finish_instance(failure[0], "failed", failure[1])
        self.steps_done += 1
        if self.on_step is not None and claim is not None:
            self.on_step(claim.instance.id)
        return True

    def _run_claim(self, store: Store, claim: Claim) -> None:
        instance = claim.instance
        if instance.status == "pending":
            store.mark_running(instance.id)
        plan = self._plan(store, instance.plan_id)
        if isinstance(plan, PlanError):
            store.delete_task(claim.task.id)
            store.finish_instance(instance.id, "failed", f"Invalid durable function: {plan}")
            return
        ctx = Context(store, instance, plan,
                      Settings(statement_timeout_ms=self.options.statement_timeout_ms), EXECUTORS)
        ctx.run_task(claim.task)
        if ctx.woke_others:
            store.notify(instance.id)
