"""The worker: claims due tasks and executes them, one transaction per step.

A worker process runs ``concurrency`` executor threads (one connection each) and one listener
thread (``LISTEN df_work``). An executor thread repeatedly claims one task and runs it through
the engine inside a single transaction, so a SQL step's effects, its result and the scheduling of
what comes next commit together, or not at all. When there is nothing to claim the thread sleeps
until the earliest timer is due or a notification arrives; it never polls. Work that must not run
inside a transaction (an HTTP request, ``VACUUM`` and the like: ``OutsideTransaction``) runs
between two: the claim commits, the work runs with no transaction open and no row lock held, and
a new transaction records its outcome (``_run_outside``).

Crashes lose nothing: an uncommitted step is rolled back by PostgreSQL and its task becomes
claimable again. ``stop()`` (SIGTERM/SIGINT in ``run``) lets in-flight steps finish, then exits.
Lost connections are re-established with backoff.

Time comes from ``WorkerOptions.clock`` (:mod:`runtime.clock`): due times are computed from it,
and a test clock wakes the worker whenever it is moved. The listener also hears
``df_cancel`` (``df.cancel``, a timeout, a failed JOIN branch, a lost RACE): an executor thread
running a statement of a cancelled task has that statement cancelled on the server, one sending
an HTTP request for it outside a transaction has the request aborted (``_run_outside``). Finished
instances older than ``retention`` are pruned in small batches by the listener thread.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import FrameType
from typing import Any

import psycopg

from runtime.chains import LEASE_SECONDS, Chain, plan_chain
from runtime.clock import Clock, RealClock
from runtime.connection import NextStep, WorkerConnection, connect
from runtime.engine import Context, OutsideTransaction, Record, Settings, StepFailed
from runtime.executors import EXECUTORS, SqlExecutor, runs_outside
from runtime.http_client import Abort, Aborted, HttpSettings, abortable
from runtime.plans import Plan, PlanError
from runtime.queries import query
from runtime.store import Claim, Store, Task

log = logging.getLogger("dfc.worker")

# An idle worker re-checks at least this often (work released by a crashed worker sends no
# notification).
MAX_IDLE_SECONDS = 5.0
HEARTBEAT_SECONDS = 10.0
# Tasks that run no SQL (starting compound nodes, finished timers) chained into one transaction.
MAX_CHAINED_TASKS = 64
# How often other workers look at a task whose work runs outside a transaction (an HTTP request,
# VACUUM, …): at most this long after its worker died, the work runs again.
OUTSIDE_RECHECK_SECONDS = 1.0
# Steps an executor goes on with, one after the other, without going back to the queue (the
# next step of the same instance, see Worker._following): then it claims the oldest due task.
MAX_FOLLOWING_STEPS = 100
# Every step deletes a task row: after this many steps of this worker the listener vacuums
# df.tasks, or every claim walks the dead rows' index entries until autovacuum comes by.
VACUUM_EVERY_STEPS = 500


# An error of the worker's own database session while it runs an instance's work (a step's own
# errors are caught in SQL and recorded as the step's failures): the instance is taken again on
# a new session this many times (per worker process) before it fails with an internal error.
SESSION_RETRIES = 3

# Notifications sent for the tasks one transaction makes ready at most (each wakes one sleeping
# executor of some worker; executors look for more work after each step anyway).
MAX_NOTIFIED_TASKS = 64


def _tasks(ready: int) -> int:
    """How many tasks to announce for ``ready`` new ones (a timer too needs one)."""
    return max(1, min(ready, MAX_NOTIFIED_TASKS))


@dataclass
class WorkerOptions:
    concurrency: int = 1
    statement_timeout_ms: int = 300_000
    application_name: str = "dfc-worker"
    clock: Clock = field(default_factory=RealClock)
    http: HttpSettings = field(default_factory=HttpSettings)
    # finished instances older than this are pruned (None: never)
    retention: timedelta | None = timedelta(days=30)
    prune_interval_seconds: float = 60.0
    prune_batch: int = 500


@dataclass
class _Slot:
    """What one executor thread is doing, for cancellation."""

    conn: psycopg.Connection[Any] | None = None
    instance_id: str | None = None
    task_id: int | None = None
    node_id: str | None = None
    cancelled: bool = False
    in_sql: bool = False
    # the step's work running outside a transaction (an HTTP request): aborted on cancellation
    abort: Abort | None = None
    # the context of the step just run, when its only new task is a SQL step to go on with
    next_ctx: Context | None = None
    following: int = 0  # steps gone on with since the last claim
    # the steps of a chain (runtime.chains) run ahead of the step gone on with
    chain: tuple[Task, ...] = ()


class Worker:
    def __init__(self, dsn: str, options: WorkerOptions | None = None,
                 on_step: Callable[[str], None] | None = None) -> None:
        self.dsn = dsn
        self.options = options or WorkerOptions()
        self.on_step = on_step
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._generation = 0
        # df_work notifications heard, and how many of them a claim has looked for since
        # (_announce, _sleep)
        self._announced = 0
        self._covered = 0
        self._threads: list[threading.Thread] = []
        self._plans: dict[int, Plan | PlanError] = {}
        self._session_failures: dict[str, int] = {}  # by instance id (_retry_on_new_session)
        self.steps_done = 0
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = self.options.clock
        self._slots: list[_Slot] = []
        self._slots_lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the threads and return."""
        self._unsubscribe = self.clock.subscribe(self.wake)
        self._threads = [threading.Thread(target=self._listen, name="dfc-listener", daemon=True)]
        self._slots = [_Slot() for _ in range(self.options.concurrency)]
        for index in range(self.options.concurrency):
            self._threads.append(
                threading.Thread(target=self._execute, args=(self._slots[index],),
                                 name=f"dfc-executor-{index}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Ask the threads to finish their current step and exit."""
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
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

    def _announce(self) -> None:
        """New work (a ``df_work`` notification, one per task made ready for others): one
        sleeping executor looks for it, unless a claim made since has already looked (see
        _sleep). Every executor does not claim at once for one task, nor does a woken one wake
        the next on the chance that there is more."""
        with self._cond:
            self._announced += 1
            self._cond.notify(1)

    def _sleep(self, generation: int, mark: int, seconds: float | None) -> None:
        """After a claim that found nothing: block until work is announced that no claim has
        looked for yet, until woken (``wake``), or for ``seconds`` of clock time (at most
        MAX_IDLE_SECONDS). ``mark``: the announcements heard before that claim, which it
        looked for."""
        real = None if seconds is None else self.clock.real_wait(seconds)
        timeout = MAX_IDLE_SECONDS if real is None else max(0.0, min(real, MAX_IDLE_SECONDS))
        deadline = time.monotonic() + timeout
        with self._cond:
            self._covered = max(self._covered, mark)
            while self._generation == generation and not self._stop.is_set() \
                    and self._announced <= self._covered:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._announced > self._covered:
                self._covered += 1  # this executor looks for that work

    def _listen(self) -> None:
        """LISTEN for work, and keep this worker's row in df.workers fresh (heartbeat)."""
        backoff = 0.1
        failing = 0.1  # the wait after an error of the listener's own, doubled while they last
        registered = False
        while not self._stop.is_set():
            try:
                with connect(self.dsn, application_name=self.options.application_name) as conn:
                    store = Store(conn, self.clock)
                    conn.execute(query("listen"))
                    conn.execute(query("listen_cancel"))
                    backoff = 0.1
                    self.wake()  # anything sent while we were not listening
                    last_beat = last_prune = 0.0
                    vacuumed_at = self.steps_done
                    while not self._stop.is_set():
                        if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                            if not registered or not store.heartbeat(self.id, self.steps_done):
                                store.register_worker(self.id, socket.gethostname(), os.getpid(),
                                                      self.options.concurrency)
                                registered = True
                            last_beat = time.monotonic()
                        if self.options.retention is not None and \
                                time.monotonic() - last_prune >= self.options.prune_interval_seconds:
                            self._prune(store)
                            last_prune = time.monotonic()
                        if self.steps_done - vacuumed_at >= VACUUM_EVERY_STEPS:
                            store.vacuum_tasks()
                            vacuumed_at = self.steps_done
                        timeout = min(1.0, self.options.prune_interval_seconds)
                        for note in conn.notifies(timeout=timeout):
                            if note.channel == "df_cancel":
                                self._cancel(note.payload)
                            else:
                                self._announce()
                        failing = 0.1
                    if registered:
                        store.unregister_worker(self.id)
            except psycopg.Error as exc:
                log.warning("listener connection lost (%s); reconnecting", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:  # the listener carries on (without it no notification wakes anyone)
                log.error("internal error in the listener (it starts a new session):\n%s",
                          traceback.format_exc())
                self._stop.wait(failing)
                failing = min(failing * 2, 30.0)

    def _prune(self, store: Store) -> None:
        """Delete finished instances older than the retention, a batch at a time."""
        assert self.options.retention is not None
        seconds = self.options.retention.total_seconds()
        for _ in range(100):  # bounded: the listener must get back to listening
            if store.prune(seconds, self.options.prune_batch) < self.options.prune_batch:
                break

    def _cancel(self, payload: str) -> None:
        """Interrupt statements of cancelled tasks (payload: see the notify_cancel query)."""
        instance_id, _, ids = payload.partition(":")
        task_ids = {int(i) for i in ids.split(",") if i.strip().isdigit()} if ids else None
        with self._slots_lock:
            for slot in self._slots:
                if slot.conn is None or slot.instance_id != instance_id:
                    continue
                if task_ids is not None and slot.task_id not in task_ids \
                        and not any(task.id in task_ids for task in slot.chain):
                    continue
                slot.cancelled = True
                if slot.abort is not None:
                    slot.abort.abort()  # an HTTP request: its connection is shut down at once
                if not slot.in_sql:
                    continue  # the step notices before its statement starts (_guard)
                try:
                    slot.conn.cancel_safe(timeout=5.0)
                except psycopg.Error as exc:
                    log.warning("could not cancel a statement of %s: %s", instance_id, exc)

    def _guard(self, slot: _Slot, entering: bool) -> None:
        """Around each user statement: whether it may be interrupted now."""
        with self._slots_lock:
            slot.in_sql = entering and slot.conn is not None
            if entering and slot.cancelled and slot.task_id is not None:
                slot.in_sql = False
                raise StepFailed(slot.task_id,
                                 "SQL execution failed: canceling statement due to user request")

    # --- executing --------------------------------------------------------------------------

    def _execute(self, slot: _Slot) -> None:
        conn: psycopg.Connection[Any] | None = None
        backoff = 0.1
        failing = 0.1  # the wait after an error of the executor's own, doubled while they last
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = connect(self.dsn, worker=True,
                                   application_name=self.options.application_name,
                                   statement_timeout_ms=self.options.statement_timeout_ms)
                    backoff = 0.1
                generation, mark = self._generation, self._announced
                if self._step(conn, slot):
                    failing = 0.1
                    continue
                self._sleep(generation, mark, Store(conn, self.clock).seconds_until_due())
            except psycopg.OperationalError as exc:
                log.warning("database connection lost (%s); reconnecting", exc)
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:  # outside any task's own handling: the executor carries on
                log.error("internal error in an executor (it starts a new session):\n%s",
                          traceback.format_exc())
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(failing)
                failing = min(failing * 2, 30.0)
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

    def _step(self, conn: psycopg.Connection[Any], slot: _Slot | None = None) -> bool:
        """Claim and run one task (one transaction); False when there was nothing to do."""
        store = Store(conn, self.clock)
        claim: Claim | None = None
        slot = slot or _Slot()
        store.step_guard = lambda entering: self._guard(slot, entering)
        if isinstance(conn, WorkerConnection):
            conn.steps_done = lambda: self._guard(slot, False)
        outside: OutsideTransaction | None = None
        try:
            following = self._following(conn, slot)
            with conn.transaction():
                claim = following or store.claim()
                if claim is None:
                    if isinstance(conn, WorkerConnection):
                        conn.end_idle()  # committed with the next statement, not on its own
                    return False
                try:
                    self._run_claims(store, claim, slot)
                    if isinstance(conn, WorkerConnection) and conn.prefetched is not None:
                        # a step run ahead that was not used must not commit without its
                        # bookkeeping (it never happens: the step runs as it was prepared)
                        conn.prefetched = None
                        raise psycopg.Rollback()
                except OutsideTransaction as request:
                    if self._lease_outside(store, request):
                        outside = request
            if outside is not None:
                self._run_outside(conn, outside)
        except StepFailed as failed:
            cancelled = self._was_cancelled(slot, failed.task_id)
            where = (slot.instance_id, slot.node_id)
            self._busy(slot, None, None, None)  # nothing of ours to interrupt any more
            if cancelled:
                self._record_cancelled(conn, failed, *where)
            else:
                self._record_failure(conn, failed)
        except psycopg.OperationalError:
            raise
        except Exception as exc:  # a defect in the runtime must not loop on one task forever
            if conn.broken:
                raise
            if claim is not None and isinstance(exc, psycopg.Error) \
                    and self._retry_on_new_session(claim.instance.id):
                # its transaction was rolled back: the work is there to take again
                log.warning("error of the worker's session running a task of %s (%s); taking "
                            "it again on a new session", claim.instance.id, exc)
                conn.close()  # the executor connects again (and prepares its statements anew)
                return True
            log.error("internal error running a task:\n%s", traceback.format_exc())
            if outside is not None:
                store.reset_session()  # the task's session lock
            if claim is not None:
                with conn.transaction():
                    store.finish_instance(claim.instance.id, "failed",
                                          f"internal error in the dfc worker: {exc}")
        finally:
            if slot.next_ctx is None:
                self._busy(slot, None, None, None)
            else:
                with self._slots_lock:
                    slot.in_sql = False  # the next step keeps the slot (and its cancellation)
        self.steps_done += 1
        if self.on_step is not None and claim is not None:
            self.on_step(claim.instance.id)
        return True

    def _retry_on_new_session(self, instance_id: str) -> bool:
        """Whether an instance whose work hit an error of the worker's own session is taken
        again (on a new session) rather than failed: SESSION_RETRIES times per worker process.
        (A defect that fails the same way every time must not loop forever.)"""
        with self._slots_lock:
            failures = self._session_failures.get(instance_id, 0) + 1
            if len(self._session_failures) >= 1000:
                self._session_failures.clear()  # bounded: long-finished instances are forgotten
            self._session_failures[instance_id] = failures
        return failures <= SESSION_RETRIES

    def _following(self, conn: psycopg.Connection[Any], slot: _Slot) -> Claim | None:
        """The step to go on with, without claiming it: the SQL step that the step just
        committed created as its only new task. The message that committed also locked and ran
        it (Store.run_step answers from that), in the transaction the commit opened. Other
        workers are not told about it; one that claimed it in between keeps it (then this
        executor claims as usual)."""
        ctx, slot.next_ctx = slot.next_ctx, None
        chain, slot.chain = slot.chain, ()
        if not isinstance(conn, WorkerConnection):
            return None
        prefetched = conn.prefetched
        step = None if ctx is None else ctx.next_step
        if chain and step is not None:
            if prefetched is not None and prefetched[0] != step.id:
                # a step of the chain failed: it fails as the step gone on with would
                step = next((task for task in chain if task.id == prefetched[0]), step)
            with self._slots_lock:  # where the chain stopped, keeping a cancellation heard
                slot.task_id, slot.node_id = step.id, step.node_id
        if ctx is None or step is None or prefetched is None or prefetched[0] != step.id \
                or not (isinstance(prefetched[1], BaseException) or prefetched[1][0]):
            slot.following = 0
            conn.discard_prefetched()
            return None
        slot.following += 1
        instance = ctx.instance
        if instance.status == "pending":
            instance = replace(instance, status="running")  # marked by the step before
        return Claim(step, instance)

    def _own_next(self, store: Store, ctx: Context) -> Claim | None:
        """The SQL step that the task just run (starting nodes, a timer) created as its only new
        task: inserted in this transaction, so no other worker can see it, let alone hold it;
        it runs next without being claimed."""
        step = ctx.next_step
        if step is None or ctx.ready_count != 1:
            return None
        instance = ctx.instance
        if instance.status == "pending":
            instance = replace(instance, status="running")  # marked by now
        return Claim(step, instance)

    def _lease_outside(self, store: Store, request: OutsideTransaction) -> bool:
        """In the claiming transaction, while the task's row is locked: take the task's session
        lock for the work outside (False when another worker holds it, running that work right
        now). Either way the task is put off by OUTSIDE_RECHECK_SECONDS, so other workers look
        at it again only that often: a worker that dies loses its lock with its session, and
        the next look runs the work again."""
        store.postpone_task(request.task_id, OUTSIDE_RECHECK_SECONDS)
        return store.try_lock_task(request.task_id)

    def _run_outside(self, conn: psycopg.Connection[Any], request: OutsideTransaction) -> None:
        """Run a step's work with no transaction open (at least once), then record its outcome
        in a new transaction that claims the task again; a task gone meanwhile (its instance
        cancelled, a lost race) drops the outcome. The task's session lock, taken when it was
        claimed, keeps other workers from running it until the outcome is recorded.

        A cancellation of the task (``_cancel``) aborts an HTTP request of the work at once
        (:class:`Abort`, in the executor's slot meanwhile): there is nothing to record then; a
        task that is somehow still there records a retryable failure, so the request runs again.
        Only the cancellation of this task aborts it: whatever else stops a request is the
        request's own failure."""
        store = Store(conn, self.clock)
        abort = Abort()
        with self._slots_lock:
            slot = next((s for s in self._slots if s.conn is conn), None)
            if slot is not None and slot.task_id == request.task_id:
                slot.abort = abort
                if slot.cancelled:  # heard while the claim committed
                    abort.abort()
            else:
                slot = None
        locked = True
        try:
            if isinstance(conn, WorkerConnection):
                conn.send_held()  # outside any block: also ends the empty transaction a commit opens
            try:
                with abortable(abort):
                    record: Record | None = request.work(store)
            except Aborted:
                record = None
            finally:
                if slot is not None:
                    with self._slots_lock:
                        slot.abort = None
            with conn.transaction():
                claim = store.claim(task_id=request.task_id, wait=True)
                if claim is None:
                    store.delete_orphan_task(request.task_id)
                else:
                    ctx = self._context(store, claim)
                    if ctx is not None:
                        if record is None:
                            ctx.step_failed(claim.task, f"{request.kind} step of task "
                                            f"{request.task_id} was aborted", True)
                        else:
                            record(ctx, claim.task)
                        if ctx.woke_others:
                            store.notify(claim.instance.id, _tasks(ctx.ready_count))
                # released before the commit, while the row is still locked: no other worker
                # can find the task unlocked and not yet updated
                store.unlock_task(request.task_id)
                locked = False
        finally:
            if locked and not conn.broken:
                store.unlock_task(request.task_id)

    def _busy(self, slot: _Slot, conn: psycopg.Connection[Any] | None, instance_id: str | None,
              task_id: int | None, node_id: str | None = None) -> None:
        with self._slots_lock:
            if task_id != slot.task_id:
                slot.cancelled = False
            slot.conn, slot.instance_id, slot.task_id = conn, instance_id, task_id
            slot.node_id = node_id

    def _was_cancelled(self, slot: _Slot, task_id: int) -> bool:
        with self._slots_lock:
            return slot.cancelled and slot.task_id == task_id

    def _record_cancelled(self, conn: psycopg.Connection[Any], failed: StepFailed,
                          instance_id: str | None, node_id: str | None) -> None:
        """A step's statement was cancelled on purpose: drop its task (its node reads
        ``cancelled``); if the task is somehow still wanted, record an ordinary failure."""
        store = Store(conn, self.clock)
        store.reset_session()
        with conn.transaction():
            store.delete_orphan_task(failed.task_id)
            if instance_id is not None and node_id is not None:
                # the step may have started in the transaction that was just rolled back
                store.cancelled_step_cleanup(instance_id, node_id)
        self._record_failure(conn, failed)

    def _record_failure(self, conn: psycopg.Connection[Any], failed: StepFailed) -> None:
        """A step's SQL failed and took its transaction with it: record the failure anew."""
        store = Store(conn, self.clock)
        store.reset_session()
        with conn.transaction():
            store.await_cancellation(failed.task_id)
            claim = store.claim(task_id=failed.task_id)
            if claim is None:
                store.delete_orphan_task(failed.task_id)
                return  # cancelled meanwhile, or another worker has it
            ctx = self._context(store, claim)
            if ctx is not None:
                ctx.step_failed(claim.task, failed.message, failed.retryable)
                if ctx.woke_others:
                    store.notify(claim.instance.id, _tasks(ctx.ready_count))

    def _context(self, store: Store, claim: Claim) -> Context | None:
        instance = claim.instance
        if instance.status == "pending":
            store.mark_running(instance.id)
        plan = self._plan(store, instance.plan_id)
        if isinstance(plan, PlanError):
            store.delete_task(claim.task.id)
            store.finish_instance(instance.id, "failed", f"Invalid durable function: {plan}")
            return None
        return Context(store, instance, plan, self._settings, EXECUTORS)

    @property
    def _settings(self) -> Settings:
        return Settings(statement_timeout_ms=self.options.statement_timeout_ms,
                        clock=self.clock, http=self.options.http)

    def _run_claims(self, store: Store, claim: Claim, slot: _Slot) -> None:
        """Run the claimed task; while no user SQL ran yet, go on with the same instance's next
        due task in the same transaction (a start and its first step commit together)."""
        woke = False
        ready = 0  # tasks made ready (the ones this transaction went on with among them)
        current: Claim | None = claim
        slot.next_ctx = None
        ctx: Context | None = None
        ran: Task | None = None
        for _ in range(MAX_CHAINED_TASKS):
            if current is None:
                break
            ctx = self._context(store, current)
            if ctx is None:
                break
            node = ctx.plan.nodes.get(current.task.node_id)
            if current is not claim and node is not None and runs_outside(node):
                # its work runs with no transaction open: it must be the first task of its own
                # transaction (raised inside a chained step's savepoint, it would roll it back)
                break
            if current is not claim and ran is claim.task and node is not None \
                    and node.kind == "sql" and not woke and not self._stop.is_set() \
                    and self._go_on(store, ctx, current.task, ran, slot, in_transaction=True):
                # the step begins a chain: its message commits this transaction with the step
                return
            self._busy(slot, store.conn, current.instance.id, current.task.id,
                       current.task.node_id)
            ran = current.task
            if current is claim:
                ctx.run_task(current.task)
            else:
                # a chained step must fail alone, not take the earlier work of this
                # transaction with it: a SQL step's statement goes under a savepoint sent in
                # its own message (no round trips of its own), any other in a nested block
                try:
                    if node is not None and node.kind == "sql" \
                            and isinstance(store.conn, WorkerConnection):
                        ctx.step_savepoint = True
                        ctx.run_task(current.task)
                    else:
                        with store.conn.transaction():
                            ctx.run_task(current.task)
                except StepFailed as failed:
                    store.reset_session()
                    if self._was_cancelled(slot, failed.task_id):
                        store.delete_orphan_task(failed.task_id)
                    else:
                        ctx.step_failed(current.task, failed.message, failed.retryable)
            woke = woke or ctx.woke_others
            ready += ctx.ready_count
            if ctx.ran_sql or ctx.stop_chain:
                break
            current = self._own_next(store, ctx) or store.claim(instance_id=claim.instance.id)
        if woke:
            store.notify(claim.instance.id, _tasks(ready))
        elif ctx is not None and ctx.ready_count == 1 and ctx.next_step is not None \
                and ran is not None and slot.following < MAX_FOLLOWING_STEPS \
                and not self._stop.is_set():
            self._go_on(store, ctx, ctx.next_step, ran, slot)

    @staticmethod
    def _chain_step(ctx: Context, executor: SqlExecutor, after: int, chain: Chain) -> NextStep:
        """The step to go on with that runs ``chain`` and then its last step."""
        last = chain.last
        statement = executor.statement(ctx, ctx.plan.nodes[last.node_id], last)
        ctx.lease = 0.0
        assert statement is not None  # a transactional step that refers to no result
        return NextStep(after, last.id, statement, chain.statements,
                        tuple(task.id for task in chain.tasks))

    def _rest_of_chain(self, ctx: Context, executor: SqlExecutor, first: Chain, slot: _Slot,
                       limit: int) -> NextStep:
        """What follows a chain's first step that began in the transaction it commits: the
        chain from the step it goes on to (or that step alone), in the transaction it opens."""
        after, step = first.tasks[0].id, first.last
        chain = plan_chain(ctx, executor, step, limit) if limit > 0 else None
        if chain is None:
            statement = executor.statement(ctx, ctx.plan.nodes[step.node_id], step)
            ctx.lease = 0.0
            assert statement is not None  # as its chain's last step would be
            return NextStep(after, step.id, statement)
        slot.chain = (*first.tasks, *chain.tasks)
        slot.following += len(chain.tasks)
        return self._chain_step(ctx, executor, after, chain)

    def _go_on(self, store: Store, ctx: Context, step: Task, ran: Task, slot: _Slot, *,
               in_transaction: bool = False) -> bool:
        """Go on with ``step`` after this transaction: the message that commits it also runs
        the step (ran's task, gone with the commit, tells whether the commit went through).
        From now on a cancellation of the step interrupts that message. ``in_transaction``:
        only where the step begins a chain, which then begins in this transaction (the step
        was created by it and has not run); the message runs it before the commit. Whether it
        goes on."""
        conn = store.conn
        executor = ctx.executors.get("sql")
        node = ctx.plan.nodes.get(step.node_id)
        if not isinstance(conn, WorkerConnection) or not isinstance(executor, SqlExecutor) \
                or node is None or ran.id not in conn.deleted:
            return False  # (a compound task that stays, e.g. a retry's timer, claims the next)
        limit = MAX_FOLLOWING_STEPS - slot.following - 1
        chain = plan_chain(ctx, executor, step, 1 if in_transaction else limit)
        if chain is not None and in_transaction:
            # only the first step now: the rest is planned while the server runs it
            first = chain
            conn.reserve_task_ids(limit)  # planning the rest then sends nothing
            conn.run_next = NextStep(
                ran.id, first.last.id, b"", first.statements, (step.id,), True,
                store.clock.now() + timedelta(seconds=LEASE_SECONDS),
                lambda: self._rest_of_chain(ctx, executor, first, slot, limit - 1))
            slot.chain = first.tasks
            slot.following += 1
        elif chain is not None:
            conn.run_next = self._chain_step(ctx, executor, ran.id, chain)
            slot.chain = chain.tasks
            slot.following += len(chain.tasks)
        elif in_transaction:
            return False
        else:
            statement = executor.statement(ctx, node, step)
            if statement is None:
                return False
            conn.run_next = NextStep(ran.id, step.id, statement)
        slot.next_ctx = ctx
        self._busy(slot, conn, step.instance_id, step.id, step.node_id)
        with self._slots_lock:
            slot.in_sql = True
        return True
