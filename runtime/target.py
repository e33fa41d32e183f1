"""Which database a command talks to, and the runtime's user-facing problems.

With no DSN (``--dsn``, ``DFC_DSN``, ``DATABASE_URL``, libpq ``PG*`` variables) the embedded
PostgreSQL server starts in a per-user data directory and the command says where it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from runtime.connection import connect, dsn_from_environment

_servers: list[Any] = []  # embedded server handles live as long as the process


@dataclass
class RuntimeProblem(Exception):
    """A problem a person can act on: a code, what happened, and what to do."""

    code: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text


def resolve_dsn(explicit: str | None, say: Callable[[str], None]) -> str:
    dsn = dsn_from_environment(explicit)
    if dsn is not None:
        return dsn
    from runtime.embedded import data_directory, server_dsn, start_server

    path = data_directory()
    try:
        server = start_server(path, on_wait=say)
    except Exception as exc:
        raise RuntimeProblem(
            "DFC801", f"cannot start the embedded PostgreSQL in {path}: {exc}",
            "pass --dsn (or set DFC_DSN) to use another server",
        ) from exc
    _servers.append(server)
    say(f"using the embedded PostgreSQL server (data in {path})")
    return server_dsn(server)


def open_connection(dsn: str) -> psycopg.Connection[Any]:
    try:
        return connect(dsn)
    except psycopg.OperationalError as exc:
        raise RuntimeProblem(
            "DFC802", f"cannot connect to PostgreSQL: {str(exc).strip()}",
            "check --dsn / DFC_DSN, and that the server is running",
        ) from exc


def require_schema(conn: psycopg.Connection[Any]) -> None:
    from runtime.queries import query

    row = conn.execute(query("schema_installed")).fetchone()
    if not (row and row[0]):
        raise RuntimeProblem("DFC803", "the df schema is not installed in this database",
                             "run `dfc db init --dsn …` first")


def require_current_schema(conn: psycopg.Connection[Any], note: Callable[[str], None]) -> None:
    """The df schema installed with every migration this dfc knows (a worker calls functions
    that older schemas lack: its executors would only log errors). ``note`` hears of migrations
    from a newer dfc; the worker starts all the same, so that workers can be replaced one at a
    time."""
    from runtime.migrate import migrations_named, newer_schema_note, schema_state

    require_schema(conn)
    state = schema_state(conn)
    if state.missing:
        raise RuntimeProblem(
            "DFC811",
            "the df schema in this database is older than this dfc: it lacks "
            + migrations_named(state.missing),
            "upgrade it with `dfc db init --dsn …`, then start the worker again",
        )
    if state.unknown:
        note(newer_schema_note(state.unknown))


def database_problem(exc: psycopg.Error) -> RuntimeProblem:
    message = (exc.diag.message_primary if exc.diag else None) or str(exc).strip()
    hint = (exc.diag.message_hint if exc.diag else None) or ""
    return RuntimeProblem("DFC804", message, hint)
