"""Database schema for SQL completion: tables and columns read from ``information_schema``.

When a database is configured (``dfc.dsn`` or ``DFC_DSN``) the server reads the tables, views
and columns the configured role can see, once, in a worker thread, and keeps them until the
user runs the ``dfc.refreshSchema`` command. Completion only reads the cached
:class:`Schema`; it never waits for the database. A connection failure is kept as a message
for the user, not raised.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import psycopg

_QUERY = """
SELECT c.table_schema, c.table_name, c.column_name, c.data_type
FROM information_schema.columns AS c
WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema', 'df')
  AND c.table_schema NOT LIKE 'pg\\_%'
ORDER BY c.table_schema, c.table_name, c.ordinal_position
"""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    data_type: str


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Schema:
    tables: tuple[Table, ...] = ()
    _by_name: dict[str, Table] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for table in self.tables:
            self._by_name.setdefault(table.qualified.lower(), table)
            self._by_name.setdefault(table.name.lower(), table)

    def table(self, name: str) -> Table | None:
        return self._by_name.get(name.lower().replace('"', ""))


def read_schema(dsn: str, timeout_seconds: int = 5) -> Schema:
    """The tables and columns visible through ``dsn``; raises ``psycopg.Error`` on failure."""
    tables: dict[tuple[str, str], list[Column]] = {}
    with psycopg.connect(dsn, connect_timeout=timeout_seconds, autocommit=True) as conn:
        for schema, table, column, data_type in conn.execute(_QUERY).fetchall():
            tables.setdefault((schema, table), []).append(Column(column, data_type))
    return Schema(tuple(Table(s, t, tuple(cols)) for (s, t), cols in tables.items()))


class SchemaCache:
    """The last schema read from the configured database, refreshed on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.schema: Schema | None = None
        self.error: str | None = None
        self.dsn: str | None = None

    def refresh(self, dsn: str | None) -> str:
        """Read the schema again (blocking; call from a worker thread); returns a status line."""
        with self._lock:
            self.dsn = dsn
            if not dsn:
                self.schema, self.error = None, None
                return "dfc: no database configured (set dfc.dsn or DFC_DSN)."
            try:
                schema = read_schema(dsn)
            except psycopg.Error as error:
                self.error = f"dfc: cannot read the database schema: {str(error).strip()}"
                return self.error
            self.schema, self.error = schema, None
            return f"dfc: read {len(schema.tables)} tables from the database."
