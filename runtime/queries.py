"""Named SQL queries of the runtime, loaded once from ``sql/queries.sql``.

Each query in the file starts with a ``-- name: <name>`` header; the text up to the next header is
the query. Python code asks for queries by name and never assembles SQL itself.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from psycopg import sql

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def _load() -> dict[str, str]:
    text = (Path(__file__).resolve().parent / "sql" / "queries.sql").read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice in queries.sql")
        queries[name] = body.strip()
    return queries


def query(name: str) -> sql.SQL:
    """The named query, ready for ``cursor.execute``."""
    try:
        return sql.SQL(_load()[name])
    except KeyError:
        raise KeyError(f"no query named {name!r} in runtime/sql/queries.sql") from None


def names() -> list[str]:
    return sorted(_load())
