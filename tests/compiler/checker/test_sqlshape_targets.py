"""The output columns read from pglast's JSON without decoding it agree with the full decode.

:mod:`compiler.sqlshape` reads most select lists and RETURNING clauses straight from the JSON
text, and decodes the tree only where that reading cannot decide; both must name the same
columns, including for the trees where the reading must give up (subqueries, XML attributes,
data-changing statements in WITH).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pglast import parser as pg

from compiler import sqlshape

STATEMENTS = [
    "SELECT 1",
    "SELECT *",
    "SELECT a, *",
    "SELECT t.*, a FROM t",
    "SELECT id, amount AS amount, status FROM orders WHERE id = 3",
    "SELECT a AS x, b AS x, a",
    'SELECT 1 AS "a""b", \'x\' AS "q\\r", "é"',
    "SELECT a.b.c, (a).b, a[1] FROM t",
    "SELECT count(*), coalesce(a, b), greatest(1, 2), current_date, 1::int, ROW(1, 2)",
    'SELECT CASE WHEN true THEN 1 END, a COLLATE "C", -1, NOT x FROM t',
    "SELECT 'xxxx' > 3 AND 'xx' > 0",
    "SELECT (SELECT 1)",
    "SELECT a FROM t WHERE b IN (SELECT c FROM d)",
    "SELECT x FROM (SELECT 1 AS x) s",
    "WITH c AS (SELECT 1 AS y) SELECT y FROM c",
    "SELECT xmlelement(name foo, xmlattributes(1 AS bar))",
    "SELECT '{\"ResTarget\":{' AS r, 2, 'Stmt\":{' AS s",
    "SELECT $$x$$, 'Stmt\":{'",
    "SELECT a FROM t ORDER BY 1 LIMIT 2",
    "SELECT 1 UNION SELECT 2",
    "VALUES (1, 2)",
    "SELECT DISTINCT a FROM t",
    "INSERT INTO t (a) VALUES (1)",
    "INSERT INTO t (a, b) VALUES (1, 2) RETURNING id",
    "INSERT INTO t (a) VALUES (1) RETURNING a, b AS c, *",
    "INSERT INTO t SELECT 1 RETURNING id, id",
    'INSERT INTO t VALUES (1) RETURNING "a""b", \'x\' AS "q\\r"',
    "UPDATE t SET a = 1 RETURNING a, a + 1, count",
    "UPDATE t SET a = 1 RETURNING old.a, new.b",
    "UPDATE t SET a = 1 RETURNING WITH (OLD AS o) o.a",
    "UPDATE t SET a = 1 RETURNING xmlelement(name a, xmlattributes(1 AS b))",
    "DELETE FROM t RETURNING t.*",
    "DELETE FROM t WHERE a IN (SELECT b FROM u) RETURNING a",
    "WITH x AS (SELECT 1 AS z) INSERT INTO t SELECT * FROM x RETURNING z",
    "WITH x AS (DELETE FROM u RETURNING v) INSERT INTO t SELECT * FROM x RETURNING w",
    "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET b = 1 RETURNING t.a",
]


def _decoded_columns(sql: str) -> tuple[str, ...] | None:
    """The columns worked out from the fully decoded tree (the general path of the module)."""
    statement: dict[str, Any] = json.loads(pg.parse_sql_json(sql))["stmts"][0]["stmt"]
    kind, body = next(iter(statement.items()))
    return sqlshape._columns(kind, body)


@pytest.mark.parametrize("sql", STATEMENTS)
def test_columns_match_the_decoded_tree(sql: str) -> None:
    assert sqlshape.analyse.__wrapped__(sql).columns == _decoded_columns(sql)


def test_the_reading_decides_plain_lists() -> None:
    text = pg.parse_sql_json("SELECT id, amount AS amount, 'x' > 1 FROM orders")
    start = text.index('"targetList":') + len('"targetList":')
    assert sqlshape._plain_target_names(text, start) == ("id", "amount", "?column?")


def test_the_reading_gives_up_where_it_cannot_tell() -> None:
    text = pg.parse_sql_json("SELECT lower(name) FROM people")
    start = text.index('"targetList":') + len('"targetList":')
    assert sqlshape._plain_target_names(text, start) is sqlshape._UNDECIDED
