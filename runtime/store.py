"""The runtime's store: one method per business operation over one database connection.

Methods run named queries from ``sql/queries.sql`` and return typed records. Transactions are
the caller's business (the worker wraps a whole step in one); the store never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Json, Jsonb

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


@dataclass(frozen=True)
class Claim:
    task: Task
    instance: Instance


@dataclass(frozen=True)
class StoredPlan:
    id: int
    name: str
    version: int
    plan: dict[str, Any]


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
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def _one(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query(name), params)
            return cur.fetchone()

    def _run(self, name: str, params: dict[str, Any] | None = None) -> int:
        with self.conn.cursor() as cur:
            cur.execute(query(name), params)
            return cur.rowcount

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
            row = self._one("claim_instance_task", {"instance_id": instance_id})
        else:
            row = self._one("claim_task")
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
        row = self._one("next_due")
        return None if row is None or row["seconds"] is None else float(row["seconds"])

    def load_plan(self, plan_id: int) -> StoredPlan:
        row = self._one("load_plan", {"plan_id": plan_id})
        if row is None:
            raise LookupError(f"plan {plan_id} does not exist")
        return StoredPlan(row["id"], row["name"], row["version"], row["plan"])

    def mark_running(self, instance_id: str) -> None:
        self._run("mark_instance_running", {"id": instance_id})

    # --- activations ------------------------------------------------------------------------

    def lock_task(self, task_id: int) -> Task | None:
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
    ) -> int | None:
        params = {
                "instance_id": instance_id,
                "node_id": node_id,
                "parent_id": parent_id,
                "branch": branch,
                "status": status,
                "delay": delay,
                "scope": _json(scope),
                "state": _json(state),
        }
        if not want_id:  # in pipeline mode this does not wait for the server
            self._run("insert_task", params)
            return None
        row = self._one("insert_task", params)
        assert row is not None
        return int(row["id"])

    def update_task_state(self, task_id: int, state: dict[str, Any]) -> None:
        self._run("update_task_state", {"id": task_id, "state": _json(state)})

    def delete_task(self, task_id: int) -> None:
        self._run("delete_task", {"id": task_id})

    def delete_subtrees(self, task_ids: list[int]) -> None:
        if task_ids:
            self._run("delete_subtrees", {"ids": task_ids})

    # --- node and instance status -----------------------------------------------------------

    def node_started(self, instance_id: str, node_id: str) -> None:
        self._run("node_started", {"instance_id": instance_id, "node_id": node_id})

    def node_finished(self, instance_id: str, node_id: str, status: str, result: JSON) -> None:
        self._run(
            "node_finished",
            {"instance_id": instance_id, "node_id": node_id, "status": status,
             "result": _jsonb(result)},
        )

    def finish_instance(self, instance_id: str, status: str, output: str) -> None:
        self._run("finish_instance", {"id": instance_id, "status": status, "output": output})
        self._run("drop_instance_tasks", {"id": instance_id})

    def notify(self, payload: str = "") -> None:
        self._run("notify", {"payload": payload})

    # --- executing user SQL -----------------------------------------------------------------

    def run_step(self, role_oid: int, sql: str, returns_rows: bool, search_path: str) -> list[JSON]:
        with self.conn.cursor() as cur:
            cur.execute(
                query("run_step"),
                {"role": role_oid, "sql": sql, "returns_rows": returns_rows,
                 "search_path": search_path},
            )
            return [row[0] for row in cur.fetchall()]

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

    def task_lock_held(self, task_id: int) -> bool:
        row = self._one("task_lock_held", {"id": task_id})
        return bool(row and row["held"])

    def postpone_task(self, task_id: int, delay: float) -> None:
        self._run("postpone_task", {"id": task_id, "delay": delay})

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
        row = self._one("consume_signal", {"instance_id": instance_id, "name": name})
        return (False, None) if row is None else (True, row["payload"])
