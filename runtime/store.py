"""The runtime's store: one method per business operation over one database connection.

Methods run named queries from ``sql/queries.sql`` and return typed records. Transactions are
the caller's business (the worker wraps a whole step in one); the store never commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Json, Jsonb

from runtime.clock import DEFAULT_CLOCK, Clock
from runtime.connection import WorkerConnection, fast_dumps
from runtime.jsonvalues import JSON, dumps
from runtime.queries import query


@dataclass
class Task:
    """An activation of a plan node (a row of ``df.tasks``)."""

    id: int
    instance_id: str
    node_id: str
    parent_id: int | None
    branch: int
    status: str
    scope: dict[str, JSON]
    state: dict[str, Any]


@dataclass(frozen=True)
class Instance:
    id: str
    label: str | None
    plan_id: int
    status: str
    role_oid: int
    search_path: str
    vars: dict[str, str]
    root_node: str

    @cached_property
    def vars_key(self) -> tuple[tuple[str, str], ...]:
        """The variables as a hashable key."""
        return tuple(sorted((k, str(v)) for k, v in self.vars.items()))


@dataclass(frozen=True)
class Claim:
    task: Task
    instance: Instance


@dataclass(frozen=True)
class Compensation:
    """An undo step waiting on an instance's compensation stack."""

    id: int
    undo_node: str
    scope: dict[str, JSON]


@dataclass(frozen=True)
class StepRun:
    """What running a SQL step gave: ``got`` is False when the task was not taken (``lock``);
    ``error``/``sqlstate`` tell a failed step (its effects rolled back, its task still locked)."""

    got: bool
    state: dict[str, Any] | None
    rows: list[JSON]
    error: str | None
    sqlstate: str | None


@dataclass(frozen=True)
class StoredPlan:
    id: int
    name: str
    version: int
    plan: dict[str, Any]


# The savepoint a chained step's statement runs under (Store.run_step).
STEP_SAVEPOINT = b"dfc_step"
# Task ids per df_cancel notification: 400 ids of up to 19 digits stay under the 8000-byte limit.
CANCEL_IDS_PER_NOTIFICATION = 400


def _jsonb(value: JSON) -> Jsonb:
    return Jsonb(value, dumps=dumps)


def _json(value: JSON) -> Json:
    return Json(value, dumps=dumps)


def _task(row: dict[str, Any]) -> Task:
    return Task(
        id=row["id"],
        instance_id=row["instance_id"],
        node_id=row["node_id"],
        parent_id=row["parent_id"],
        branch=row["branch"],
        status=row["status"],
        scope=row["scope"],
        state=row["state"],
    )


class Store:
    def __init__(self, conn: psycopg.Connection[Any], clock: Clock = DEFAULT_CLOCK) -> None:
        self.conn = conn
        self.clock = clock
        # called with True before and False after a user statement (the worker's cancellation
        # bookkeeping: only a user statement may be interrupted)
        self.step_guard: Callable[[bool], None] | None = None

    def _one(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        held = self._take_held()
        with self.conn.cursor(row_factory=dict_row) as cur:
            self._execute(cur, held, name, params)
            return cur.fetchone()

    def _run(self, name: str, params: dict[str, Any] | None = None) -> int:
        held = self._take_held()
        with self.conn.cursor() as cur:
            self._execute(cur, held, name, params)
            return cur.rowcount

    def _take_held(self) -> list[bytes]:
        if not isinstance(self.conn, WorkerConnection):
            return []
        self.conn.locked.clear()  # any statement may change a task locked ahead
        return self.conn.take_held()

    def _execute(self, cur: psycopg.Cursor[Any], held: list[bytes], name: str,
                 params: dict[str, Any] | None) -> None:
        """Run the named query; writes held back so far go in the same message, in front."""
        conn = self.conn
        if not held or not isinstance(conn, WorkerConnection):
            cur.execute(query(name), params)
            return
        conn.run_batch(cur, [*held, conn.bind(name, params)])

    def _write(self, op: list[Any], name: str, params: dict[str, Any],
               task_id: int | None = None) -> None:
        """A write whose outcome nobody reads: held back as a df._apply operation ``op`` to
        travel with the next statement when the connection allows it (see
        runtime.connection.WorkerConnection), else the named query at once."""
        conn = self.conn
        if isinstance(conn, WorkerConnection) and conn.holding:
            if task_id is not None:
                conn.locked.pop(task_id, None)  # a write to a task locked ahead
            conn.hold(op)
        else:
            self._run(name, params)

    # --- claiming ---------------------------------------------------------------------------

    def claim(self, *, instance_id: str | None = None, task_id: int | None = None,
              wait: bool = False) -> Claim | None:
        """The next due task (of one instance, or one task by id), locked; None if none.
        ``wait`` waits for the lock of task ``task_id`` instead of skipping it."""
        if task_id is not None and wait:
            row = self._one("relock_task", {"id": task_id})
        elif task_id is not None:
            row = self._one("claim_task_by_id", {"id": task_id})
        elif instance_id is not None:
            row = self._one("claim_instance_task",
                            {"instance_id": instance_id, "now": self.clock.now()})
        else:
            row = self._one("claim_task", {"now": self.clock.now()})
        if row is None:
            return None
        instance = Instance(
            id=row["instance_id"],
            label=row["label"],
            plan_id=row["plan_id"],
            status=row["instance_status"],
            role_oid=int(row["role_oid"]),
            search_path=row["search_path"],
            vars=row["vars"],
            root_node=row["root_node"],
        )
        return Claim(_task(row), instance)

    def seconds_until_due(self) -> float | None:
        row = self._one("next_due", {"now": self.clock.now()})
        return None if row is None or row["seconds"] is None else float(row["seconds"])

    def load_plan(self, plan_id: int) -> StoredPlan:
        row = self._one("load_plan", {"plan_id": plan_id})
        if row is None:
            raise LookupError(f"plan {plan_id} does not exist")
        return StoredPlan(row["id"], row["name"], row["version"], row["plan"])

    def mark_running(self, instance_id: str) -> None:
        self._write(["running", instance_id], "mark_instance_running", {"id": instance_id})

    # --- activations ------------------------------------------------------------------------

    def lock_task(self, task_id: int) -> Task | None:
        if isinstance(self.conn, WorkerConnection) and task_id in self.conn.locked:
            row = self.conn.locked.pop(task_id)  # locked right after the step ran (run_step)
            return None if row is None else _task(row)
        row = self._one("lock_task", {"id": task_id})
        return None if row is None else _task(row)

    def insert_task(
        self,
        *,
        instance_id: str,
        node_id: str,
        parent_id: int | None,
        branch: int,
        status: str,
        scope: dict[str, JSON],
        state: dict[str, Any],
        delay: float = 0.0,
        want_id: bool = True,
        next_step: bool = False,
    ) -> int | None:
        """Insert an activation, due ``delay`` seconds from now on the store's clock.
        ``next_step``: the step the worker goes on with after this transaction, held back
        with an id reserved for it (returned) when the connection holds writes."""
        run_at = self.clock.now() + timedelta(seconds=delay) if delay > 0 else None
        params = {
                "instance_id": instance_id,
                "node_id": node_id,
                "parent_id": parent_id,
                "branch": branch,
                "status": status,
                "run_at": run_at,
                "scope": _json(scope),
                "state": _json(state),
        }
        conn = self.conn
        holding = isinstance(conn, WorkerConnection) and conn.holding
        if not want_id or holding:
            # a task whose id is wanted (a compound node's, its children's parent) or that the
            # worker goes on with gets one reserved beforehand, so its insert can be held too
            task_id = conn.reserve_task_id() if holding and (want_id or next_step) \
                and isinstance(conn, WorkerConnection) else None
            op = ["insert", instance_id, node_id, parent_id, branch, status,
                  None if run_at is None else run_at.isoformat(), scope, state, task_id]
            if task_id is not None and isinstance(conn, WorkerConnection):
                conn.hold_insert(op)
            else:
                self._write(op, "insert_task", params)
            return task_id
        row = self._one("insert_task", params)
        assert row is not None
        return int(row["id"])

    def update_task_state(self, task_id: int, state: dict[str, Any]) -> None:
        self._write(["state", task_id, state], "update_task_state",
                    {"id": task_id, "state": _json(state)}, task_id)

    def delete_task(self, task_id: int) -> None:
        self._write(["delete", task_id], "delete_task", {"id": task_id}, task_id)
        if isinstance(self.conn, WorkerConnection) and self.conn.holding:
            self.conn.deleted.add(task_id)

    def delete_subtrees(self, task_ids: list[int]) -> None:
        if task_ids:
            self._run("delete_subtrees", {"ids": task_ids})

    def cancel_subtrees(self, instance_id: str, task_ids: list[int]) -> list[int]:
        """Delete the activations below ``task_ids`` (and those tasks), mark their running nodes
        cancelled; the ids of those whose work may be running elsewhere right now (a locked
        task, or a ready one: an HTTP request in flight holds no row lock)."""
        row = self._one("cancel_subtrees", {"instance_id": instance_id, "ids": task_ids})
        return list(row["busy"] or []) if row else []

    def notify_cancel(self, instance_id: str, task_ids: list[int] | None = None) -> None:
        """Ask every worker (on commit) to interrupt work of these tasks (all when None)."""
        if task_ids is None:
            self._run("notify_cancel", {"payload": instance_id})
            return
        # a notification's payload is limited to 8000 bytes: a large subtree takes several
        for start in range(0, len(task_ids), CANCEL_IDS_PER_NOTIFICATION):
            chunk = task_ids[start:start + CANCEL_IDS_PER_NOTIFICATION]
            self._run("notify_cancel",
                      {"payload": f"{instance_id}:{','.join(str(i) for i in chunk)}"})

    def schedule_task(self, task_id: int, delay: float, state: dict[str, Any]) -> None:
        """Make a (compound) task due ``delay`` seconds from now on the store's clock."""
        self._run("schedule_task", {"id": task_id, "state": _json(state),
                                    "run_at": self.clock.now() + timedelta(seconds=delay)})

    def wait_task(self, task_id: int, state: dict[str, Any]) -> None:
        """Turn a claimed compound task back into one that waits for its children."""
        self._run("wait_task", {"id": task_id, "state": _json(state)})

    def cancelled_step_cleanup(self, instance_id: str, node_id: str) -> None:
        """After a statement of a cancelled instance was interrupted: its node reads
        ``cancelled`` and the instance keeps no tasks."""
        self._run("cancelled_step_cleanup", {"instance_id": instance_id, "node_id": node_id})

    def await_cancellation(self, task_id: int) -> None:
        """Wait for a df.cancel of the task's instance under way to commit (see
        lock_instance_cancel); a later one waits for this transaction."""
        self._run("lock_instance_cancel", {"id": task_id})

    def delete_orphan_task(self, task_id: int) -> None:
        """Remove a task whose instance finished or whose parent is gone (its step was interrupted)."""
        self._run("delete_orphan_task", {"id": task_id})

    # --- node and instance status -----------------------------------------------------------

    def node_started(self, instance_id: str, node_id: str) -> None:
        self._write(["started", instance_id, node_id], "node_started",
                    {"instance_id": instance_id, "node_id": node_id})

    def node_finished(self, instance_id: str, node_id: str, status: str, result: JSON) -> None:
        self._write(
            ["finished", instance_id, node_id, status, result],
            "node_finished",
            {"instance_id": instance_id, "node_id": node_id, "status": status,
             "result": _jsonb(result)},
        )

    def node_attempt(self, instance_id: str, node_id: str, attempts: int,
                     error: str | None) -> None:
        """Record that ``node_id`` has made ``attempts`` attempts, the last failing with ``error``."""
        self._run("node_attempt", {"instance_id": instance_id, "node_id": node_id,
                                   "attempts": attempts, "error": error})

    def may_use_http(self, role_oid: int) -> tuple[bool, str]:
        """Whether the role may send HTTP requests, and its name."""
        row = self._one("may_use_http", {"role": role_oid})
        assert row is not None
        return bool(row["allowed"]), str(row["role"])

    # --- compensation -----------------------------------------------------------------------

    def push_compensation(self, instance_id: str, node_id: str, undo_node: str,
                          scope: dict[str, JSON]) -> None:
        self._run("push_compensation", {"instance_id": instance_id, "node_id": node_id,
                                        "undo_node": undo_node, "scope": _json(scope)})

    def next_compensation(self, instance_id: str) -> Compensation | None:
        """The newest pending undo step, now marked running; None when none is left."""
        row = self._one("next_compensation", {"instance_id": instance_id})
        return None if row is None else Compensation(row["id"], row["undo_node"], row["scope"])

    def finish_running_compensation(self, instance_id: str, ok: bool) -> None:
        self._run("finish_running_compensation",
                  {"instance_id": instance_id, "status": "completed" if ok else "failed"})

    def set_instance_failure(self, instance_id: str, message: str) -> None:
        self._run("set_instance_failure", {"id": instance_id, "failure": message})

    def compensation_summary(self, instance_id: str) -> tuple[str, int, int]:
        row = self._one("compensation_summary", {"instance_id": instance_id})
        assert row is not None
        return row["failure"] or "", int(row["ran"]), int(row["failed"])

    # --- retention --------------------------------------------------------------------------

    def vacuum_tasks(self) -> None:
        """Vacuum df.tasks (autocommit connections only), unless someone else is."""
        self._run("vacuum_tasks")

    def prune(self, older_than_seconds: float, batch_size: int) -> int:
        row = self._one("prune", {"seconds": older_than_seconds, "batch": batch_size})
        return int(row["pruned"]) if row else 0

    def finish_instance(self, instance_id: str, status: str, output: str) -> None:
        conn = self.conn
        if isinstance(conn, WorkerConnection) and conn.holding:
            conn.locked.clear()  # its tasks go
            conn.hold(["finish", instance_id, status, output])
            return
        self._run("finish_instance", {"id": instance_id, "status": status, "output": output})
        self._run("drop_instance_tasks", {"id": instance_id})

    def notify(self, payload: str = "", tasks: int = 1) -> None:
        """Tell the workers (on commit) that ``tasks`` tasks are ready for them."""
        if tasks <= 1:
            self._run("notify", {"payload": payload})
        else:
            self._run("notify_tasks", {"payload": payload, "count": tasks})

    # --- executing user SQL -----------------------------------------------------------------

    def run_step(self, task_id: int, role_oid: int, sql: str, returns_rows: bool,
                 search_path: str, *, lock: bool = False, then_lock: int | None = None,
                 savepoint: bool = False) -> StepRun:
        """Run a step's SQL as the role, in one statement (df._run_step_task). ``lock``: take
        the task first (skipped, ``got`` False, when it is held elsewhere or no longer due);
        ``then_lock``: a task to lock once the step has run (lock_task then answers from
        that). A failing step is reported, not raised: its effects are rolled back, its task
        stays locked. A cancelled statement (and a refused step) raises; with ``savepoint``
        the statement runs under a savepoint sent in the same message, and such a failure
        rolls back to it, leaving the transaction usable. A step that the message committing
        the one before already ran (Worker._following) is answered from that."""
        conn = self.conn
        params = {"task": task_id, "lock": lock, "now": self.clock.now(), "role": role_oid,
                  "sql": sql, "returns_rows": returns_rows, "search_path": search_path,
                  "parent": then_lock, "prepared": None}
        if isinstance(conn, WorkerConnection):
            if conn.prefetched is not None:
                conn.send_held()  # the step ran already: they follow it
            conn.locked.clear()
        if self.step_guard is not None:
            self.step_guard(True)
        try:
            row = conn.take_prefetched(task_id) if isinstance(conn, WorkerConnection) else None
            if row is None:
                row = self._send_step(params, savepoint)
        finally:
            if self.step_guard is not None:
                self.step_guard(False)
        assert row is not None
        got, state, rows, error, sqlstate, parent = row
        if not got:
            return StepRun(False, None, [], None, None)
        if isinstance(conn, WorkerConnection) and then_lock is not None and error is None:
            conn.locked[then_lock] = parent
        return StepRun(True, state, rows if rows is not None else [], error, sqlstate)

    def _send_step(self, params: dict[str, Any], savepoint: bool) -> Any:
        """Send the step, with the writes held so far in front of it in the same message. They
        belong to the same transaction: if they fail, it is lost with the step, as when they
        fail on their own (the step fails and is recorded anew)."""
        conn = self.conn
        if not isinstance(conn, WorkerConnection):
            with conn.cursor() as cur:
                cur.execute(query("run_step"), params)
                return cur.fetchone()
        held = conn.take_held()
        params["prepared"] = conn.prepared_count
        with conn.cursor() as cur:
            if savepoint:
                try:
                    conn.run_batch(cur, [*held, b"SAVEPOINT " + STEP_SAVEPOINT,
                                         conn.bind("run_step", params)])
                except psycopg.Error as exc:
                    if not conn.broken:
                        try:
                            conn.rollback_to_savepoint(STEP_SAVEPOINT)
                        except psycopg.Error:
                            if conn.broken or not held:
                                raise
                            # the held writes failed before the savepoint: the transaction
                            # is lost, and the error is theirs
                            raise exc from None
                    raise
            else:
                conn.run_batch(cur, [*held, conn.bind("run_step", params)])
            return cur.fetchone()

    def step_statement(self, task_id: int, role_oid: int, sql: str, returns_rows: bool,
                       search_path: str, then_lock: int | None, lease: float = 0.0) -> bytes:
        """The statement of run_step(…, lock=True) for a worker session, to send later (a task
        due up to ``lease`` seconds later counts as due)."""
        assert isinstance(self.conn, WorkerConnection)
        now = self.clock.now() + timedelta(seconds=lease)
        return self.conn.bind("run_step", {
            "task": task_id, "lock": True, "now": now, "role": role_oid,
            "sql": sql, "returns_rows": returns_rows, "search_path": search_path,
            "parent": then_lock, "prepared": self.conn.prepared_count})

    def chained_step_statement(self, task_id: int, instance_id: str, node_id: str,
                               role_oid: int, sql: str, returns_rows: bool, search_path: str,
                               parent: int, ops: list[list[Any]], lease: float) -> bytes:
        """The statement that runs a step of a chain (runtime.chains), records its node as
        completed and applies ``ops``, its other writes (a task due up to ``lease`` seconds
        later counts as due)."""
        assert isinstance(self.conn, WorkerConnection)
        now = self.clock.now() + timedelta(seconds=lease)
        params: dict[str, Any] = {
            "task": task_id, "instance_id": instance_id, "node_id": node_id, "now": now,
            "role": role_oid, "sql": sql, "returns_rows": returns_rows,
            "search_path": search_path, "parent": parent, "prepared": self.conn.prepared_count}
        move = _moved_on(ops, task_id, instance_id, parent)
        if move is None:
            return self.conn.bind("run_chained_step", {**params, "ops": Json(ops, dumps=fast_dumps)})
        return self.conn.bind("run_chained_step_moving", {
            **params, "next": move[9], "next_node": move[2], "next_branch": move[4],
            "next_run_at": move[6], "next_scope": Json(move[7], dumps=fast_dumps),
            "next_state": Json(move[8], dumps=fast_dumps)})

    def reset_session(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(query("reset_session"))

    # --- worker registry ----------------------------------------------------------------------

    def register_worker(self, worker_id: str, hostname: str, pid: int, concurrency: int) -> None:
        self._run("forget_dead_workers")
        self._run("register_worker", {"id": worker_id, "hostname": hostname, "pid": pid,
                                      "concurrency": concurrency})

    def heartbeat(self, worker_id: str, steps: int) -> bool:
        """False when the registration is gone (then register again)."""
        return self._run("heartbeat", {"id": worker_id, "steps": steps}) > 0

    def unregister_worker(self, worker_id: str) -> None:
        self._run("unregister_worker", {"id": worker_id})

    # --- statements that cannot run inside a transaction block ------------------------------

    def try_lock_task(self, task_id: int) -> bool:
        row = self._one("try_lock_task", {"id": task_id})
        return bool(row and row["locked"])

    def unlock_task(self, task_id: int) -> None:
        self._run("unlock_task", {"id": task_id})

    def postpone_task(self, task_id: int, delay: float) -> None:
        """Make a task due ``delay`` seconds from now on the store's clock."""
        self._run("postpone_task", {"id": task_id,
                                    "run_at": self.clock.now() + timedelta(seconds=delay)})

    def run_outside_transaction(self, role_oid: int, sql: str, search_path: str) -> None:
        """Run ``sql`` as the role, in autocommit; the session goes back to the worker after."""
        try:
            self._run("become_role", {"role": role_oid, "search_path": search_path})
            with self.conn.cursor() as cur:
                cur.execute(sql.encode())
        finally:
            if not self.conn.broken:
                self._run("reset_role")
                with self.conn.cursor() as cur:
                    cur.execute(query("reset_all"))

    def consume_signal(self, instance_id: str, name: str) -> tuple[bool, JSON]:
        """The oldest buffered signal of that name, removed; (False, None) when none."""
        self._run("lock_signal", {"instance_id": instance_id, "name": name})
        row = self._one("consume_signal", {"instance_id": instance_id, "name": name})
        return (False, None) if row is None else (True, row["payload"])


def _moved_on(ops: list[list[Any]], task_id: int, instance_id: str,
              parent: int) -> list[Any] | None:
    """The ``move`` of ``ops`` when they are exactly a chained step's usual bookkeeping (its
    task moves on to a next step of the same instance and parent, whose node starts), which
    df._run_chained_step_moving makes with typed arguments; None for anything else."""
    if len(ops) != 2:
        return None
    move, started = ops
    if move[0] != "move" or started[0] != "started" or move[10] != task_id \
            or move[1] != instance_id or move[3] != parent or move[5] != "ready" \
            or started[1] != instance_id or started[2] != move[2]:
        return None
    return move
