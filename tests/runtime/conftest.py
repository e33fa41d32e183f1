"""Fixtures shared by the runtime tests."""

from __future__ import annotations

import psycopg
import pytest


@pytest.fixture
def linked(dsn: str) -> str:
    """A test database with the dblink extension in schema ``links`` (installed by the tests'
    superuser, as an administrator would; dfc never installs it)."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("CREATE SCHEMA links")
        admin.execute("CREATE EXTENSION dblink SCHEMA links")
    return dsn
