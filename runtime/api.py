"""The Python API for applications: start workflows and follow them over a psycopg connection.

Every function takes an open connection (autocommit or not: ``start`` joins the caller's
transaction, exactly like ``SELECT df.start(...)``) and calls the SQL API of the ``df`` schema::

    from runtime import api
    from runtime.connection import connect

    with connect(dsn) as conn:
        instance = api.start(conn, plan)          # a compiled plan (dict) or an installed name
        api.await_instance(conn, instance, 60)    # 'completed' | 'failed' | 'cancelled'
        print(api.result(conn, instance))
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from runtime import plans
from runtime.jsonvalues import JSON, dumps, loads
from runtime.queries import query


def _value(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> Any:
    row = conn.execute(query(name), params).fetchone()
    return None if row is None else row[0]


def install(conn: psycopg.Connection[Any], plan: dict[str, Any]) -> int:
    """Validate and install a compiled plan under its name; returns its version."""
    plans.validate(plan)
    return int(_value(conn, "install_plan", {"plan": dumps(plan)}))


def start(conn: psycopg.Connection[Any], fut: str | dict[str, Any], label: str | None = None,
          *, transaction_mode: Literal["caller", "new"] = "caller") -> str:
    """Start an instance of a compiled plan, an installed plan (by name) or one SQL statement.

    ``transaction_mode="caller"`` makes the start part of ``conn``'s transaction; ``"new"``
    commits it at once over a loopback connection (needs dblink, see docs/runtime.md).
    """
    if isinstance(fut, dict):
        plans.validate(fut)
        fut = dumps(fut)
    return str(_value(conn, "start", {"fut": fut, "label": label,
                                      "transaction_mode": transaction_mode}))


def status(conn: psycopg.Connection[Any], instance_id: str) -> str | None:
    value = _value(conn, "status", {"id": instance_id})
    return None if value is None else str(value)


def result(conn: psycopg.Connection[Any], instance_id: str) -> JSON:
    """The root result of a completed instance (None otherwise)."""
    text = _value(conn, "result", {"id": instance_id})
    return None if text is None else loads(text)


def output(conn: psycopg.Connection[Any], instance_id: str) -> tuple[str, str | None] | None:
    """(status, output): the result as JSON text, or the error of a failed instance."""
    row = conn.execute(query("instance_output"), {"id": instance_id}).fetchone()
    return None if row is None else (str(row[0]), row[1])


def signal(conn: psycopg.Connection[Any], instance_id: str, name: str, data: JSON = None) -> None:
    _value(conn, "signal", {"id": instance_id, "name": name,
                            "data": "{}" if data is None else dumps(data)})


def cancel(conn: psycopg.Connection[Any], instance_id: str,
           reason: str = "Cancelled by user") -> str:
    return str(_value(conn, "cancel", {"id": instance_id, "reason": reason}))


def await_instance(conn: psycopg.Connection[Any], instance_id: str, timeout: int = 30) -> str:
    """Block until the instance is finished; its final status."""
    return str(_value(conn, "await_instance", {"id": instance_id, "timeout": timeout}))


def explain(conn: psycopg.Connection[Any], target: str) -> str:
    return str(_value(conn, "explain", {"input": target}))


@dataclass(frozen=True)
class NodeProgress:
    node_id: str
    status: str
    started_at: dt.datetime | None
    updated_at: dt.datetime
    runs: int
    now: dt.datetime

    @property
    def elapsed(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.now if self.status == "running" else self.updated_at
        return max((end - self.started_at).total_seconds(), 0.0)


def progress(conn: psycopg.Connection[Any], instance_id: str) -> dict[str, NodeProgress]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query("node_progress"), {"id": instance_id})
        return {
            row["node_id"]: NodeProgress(row["node_id"], row["inferred_status"], row["started_at"],
                                         row["updated_at"], row["runs"], row["now"])
            for row in cur.fetchall()
        }


@dataclass(frozen=True)
class InstanceRow:
    instance_id: str
    label: str | None
    function_name: str
    status: str
    output: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None
    next_cursor: str | None


def list_instances(conn: psycopg.Connection[Any], *, status: str | None = None, limit: int = 100,
                   label: str | None = None, cursor: str | None = None) -> list[InstanceRow]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query("list_instances"),
                    {"status": status, "limit": limit, "label": label, "cursor": cursor})
        return [
            InstanceRow(r["instance_id"], r["label"], r["function_name"], r["status"], r["output"],
                        r["created_at"], r["completed_at"], r["next_cursor"])
            for r in cur.fetchall()
        ]
