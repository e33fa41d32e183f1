"""Connections to PostgreSQL: where the DSN comes from and how sessions are configured.

Worker sessions pin the settings the worker relies on (``search_path``, ``TimeZone``, …) as
connection options, so that ``RESET ALL`` after a step returns to them. JSON numbers are read
as ``Decimal`` to keep numeric values exact.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads

from runtime.jsonvalues import dumps, loads

# libpq's environment variables that name a server on their own.
_LIBPQ_ENV = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")

WORKER_OPTIONS = (
    "-c search_path=pg_catalog,pg_temp -c TimeZone=UTC -c DateStyle=ISO,YMD "
    "-c IntervalStyle=postgres -c df.in_workflow=true"
)


def dsn_from_environment(explicit: str | None = None) -> str | None:
    """The DSN to use: ``explicit``, ``DFC_DSN``, ``DATABASE_URL``, or libpq's ``PG*``
    variables (returned as ``""``). None means no server was named."""
    if explicit:
        return explicit
    for name in ("DFC_DSN", "DATABASE_URL"):
        value = os.environ.get(name)
        if value:
            return value
    if any(os.environ.get(name) for name in _LIBPQ_ENV):
        return ""
    return None


def configure(conn: psycopg.Connection[Any]) -> None:
    set_json_loads(loads, conn)
    set_json_dumps(dumps, conn)


def connect(dsn: str, *, worker: bool = False, application_name: str = "dfc",
            statement_timeout_ms: int = 0) -> psycopg.Connection[Any]:
    """An autocommit connection; ``worker`` sessions get the worker's pinned settings, including
    the statement_timeout every step runs with."""
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "application_name": application_name,
        "connect_timeout": 10,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    if worker:
        kwargs["options"] = f"{WORKER_OPTIONS} -c statement_timeout={int(statement_timeout_ms)}"
    conn = psycopg.connect(dsn, **kwargs)
    configure(conn)
    return conn
