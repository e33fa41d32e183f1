"""Installing and upgrading the ``df`` schema from the versioned SQL files.

A fresh database gets ``sql/schema.sql`` (the whole schema at the newest version) and every
migration is recorded as applied; an existing one gets the migrations it has not applied yet,
in order. Both run in one transaction under an advisory lock, so concurrent installs are safe
and a failed upgrade changes nothing. Migration numbers may have gaps; a database gets every
migration it has not recorded, in number order.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from runtime.queries import query

SQL_DIR = Path(__file__).resolve().parent / "sql"
_MIGRATION = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True)
class InstallReport:
    fresh: bool
    applied: list[int]
    version: int
    # migrations the database has that this dfc does not know: a newer dfc upgraded it
    unknown: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SchemaState:
    """A database's df schema against this dfc's migrations."""

    missing: list[int]  # known here, not applied there: the database needs `dfc db init`
    unknown: list[int]  # applied there, not known here: a newer dfc upgraded it


def schema_sql() -> str:
    return (SQL_DIR / "schema.sql").read_text(encoding="utf-8")


def migrations() -> list[Migration]:
    found = []
    for entry in (SQL_DIR / "migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2),
                                   entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    # Numbers may have gaps (numbers are reserved ahead by parallel work); each is used once.
    for before, after in itertools.pairwise(found):
        if before.version == after.version:
            raise RuntimeError(f"migration {after.version:04d} is defined twice in "
                               "runtime/sql/migrations")
    if not found or found[0].version != 1:
        raise RuntimeError("migration 0001 is missing from runtime/sql/migrations")
    return found


def latest_version() -> int:
    return migrations()[-1].version


def install(conn: psycopg.Connection[Any]) -> InstallReport:
    """Install or upgrade the schema; idempotent."""
    steps = migrations()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(query("install_lock"))
        cur.execute(query("schema_installed"))
        row = cur.fetchone()
        fresh = not (row and row[0])
        if fresh:
            cur.execute(schema_sql().encode())
            done: set[int] = set()
        else:
            cur.execute(query("applied_versions"))
            done = {r[0] for r in cur.fetchall()}
        applied = []
        for migration in steps:
            if migration.version in done:
                continue
            if not fresh:
                cur.execute(migration.sql.encode())
            cur.execute(query("record_version"),
                        {"version": migration.version, "name": migration.name})
            applied.append(migration.version)
    return InstallReport(fresh=fresh, applied=applied, version=steps[-1].version,
                         unknown=_against_known(done).unknown)


def schema_state(conn: psycopg.Connection[Any]) -> SchemaState:
    """Which of this dfc's migrations the database lacks, and which of its own this dfc does
    not know (the schema must be installed)."""
    return _against_known({row[0] for row in conn.execute(query("applied_versions")).fetchall()})


def _against_known(applied: set[int]) -> SchemaState:
    known = {migration.version for migration in migrations()}
    return SchemaState(missing=sorted(known - applied), unknown=sorted(applied - known))


def newer_schema_note(unknown: list[int]) -> str:
    """What to tell of migrations the database has and this dfc does not know."""
    return (f"the df schema in this database has {migrations_named(unknown)} from a newer dfc;"
            " upgrade dfc here as well")


def migrations_named(versions: list[int], most: int = 5) -> str:
    """``migration 0036`` or ``migrations 0034, 0035``: at most ``most`` numbers, then how
    many more."""
    shown = ", ".join(f"{version:04d}" for version in versions[:most])
    more = len(versions) - most
    numbers = f"{shown} and {more} more" if more > 0 else shown
    return f"migration{'s' if len(versions) > 1 else ''} {numbers}"


def apply_migrations(conn: psycopg.Connection[Any]) -> None:
    """Apply every migration in order on an empty database (used to check schema.sql)."""
    with conn.transaction(), conn.cursor() as cur:
        for migration in migrations():
            cur.execute(migration.sql.encode())
            cur.execute(query("record_version"),
                        {"version": migration.version, "name": migration.name})
