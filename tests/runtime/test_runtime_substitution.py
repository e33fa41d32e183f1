"""Substitution: unit tests of the scanner and end-to-end runs of every reference form."""

from __future__ import annotations

from decimal import Decimal

import pytest
from helpers import output, run
from plans import PlanBuilder

from runtime.connection import connect
from runtime.substitution import SubstitutionError, substitute_sql, substitute_vars

ROWS = {"rows": [{"id": 1, "name": "a'b"}, {"id": 2, "name": "c\\d"}], "row_count": 2}
EMPTY = {"rows": [], "row_count": 0}


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT $r", "SELECT 1"),
        ("SELECT $r.name", "SELECT 'a''b'"),
        ("SELECT $r.id + 1", "SELECT 1 + 1"),
        ("SELECT $e?", "SELECT NULL"),
        ("SELECT $e.id?", "SELECT NULL"),
        ("SELECT 10-$neg", "SELECT 10-(-5)"),
        ("SELECT '$r.name'", "SELECT 'a''b'"),
        ("SELECT E'$s'", "SELECT E'x\\\\y'"),
        ("SELECT $s", "SELECT E'x\\\\y'"),
        ("SELECT $unbound", "SELECT $unbound"),
        ("SELECT $1", "SELECT $1"),
        ("SELECT 1 -- $r", "SELECT 1 -- $r"),
        ('SELECT "$r"', 'SELECT "$r"'),
        ("SELECT * FROM $r.*", "SELECT * FROM (VALUES (1, 'a''b'::text), (2, E'c\\\\d'::text)) AS \"r\"(\"id\", \"name\")"),
        ("SELECT * FROM $e.*", "SELECT * FROM (SELECT NULL WHERE false) AS \"e\""),
        ("SELECT $obj", "SELECT '{\"a\":[1,2]}'"),
        ("DO $$ BEGIN RAISE NOTICE '$r'; END $$", "DO $$ BEGIN RAISE NOTICE '1'; END $$"),
    ],
)
def test_substitute_sql(sql: str, expected: str) -> None:
    results = {"r": ROWS, "e": EMPTY, "neg": {"rows": [{"v": -5}], "row_count": 1},
               "s": {"rows": [{"v": "x\\y"}], "row_count": 1}, "obj": {"a": [1, 2]}}
    assert substitute_sql(sql, results) == expected


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT $e", "$e has no rows — query returned zero results"),
        ("SELECT $n", "$n is NULL — first column of first row is NULL"),
        ("SELECT $r.missing", "$r.missing: result has no field 'missing' (available: id, name)"),
        ("DO $$ $q $$", "would end the dollar-quoted string"),
    ],
)
def test_substitution_errors(sql: str, message: str) -> None:
    results = {"r": ROWS, "e": EMPTY, "n": {"rows": [{"v": None}], "row_count": 1},
               "q": {"rows": [{"v": "$$; DROP TABLE t; --"}], "row_count": 1}}
    with pytest.raises(SubstitutionError, match=message.replace("$", r"\$").replace("(", r"\(").replace(")", r"\)")):
        substitute_sql(sql, results)


def test_vars_everywhere_including_json() -> None:
    assert substitute_vars('{"id": "{x}", "n": {y}}', {"x": "1", "y": "2"}) == '{"id": "1", "n": 2}'
    assert substitute_vars("{unknown} {x}", {"x": "v"}) == "{unknown} v"


HOSTILE = [
    "'; DROP TABLE victims; --",
    "\\'; DROP TABLE victims; --",
    "$$; DROP TABLE victims; --",
    "*/ DROP TABLE victims; /*",
    "a\nb\\",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_values(dsn: str, value: str) -> None:
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE victims (x int); CREATE TABLE value_in (v text)")
        conn.execute("INSERT INTO value_in VALUES (%s)", (value,))
    b = PlanBuilder()
    root = b.seq(
        b.sql("SELECT v FROM value_in", bind="h"),
        b.sql("SET standard_conforming_strings = off"),
        b.sql("SELECT $h AS a, '$h' AS b, E'$h' AS c, $h.v AS d /* $h */ -- $h"),
    )
    iid, status, res = run(dsn, b.build(root))
    assert status == "completed", output(dsn, iid)
    assert res["rows"][0] == {"a": value, "b": value, "c": value, "d": value}
    with connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('victims') IS NOT NULL").fetchone() == (True,)


def test_every_form_end_to_end(dsn: str) -> None:
    with connect(dsn) as conn:
        conn.execute("SELECT df.setvar('who', 'world')")
    b = PlanBuilder(label="lbl")
    root = b.seq(
        b.sql("SELECT 7 AS n, 'x' AS s, 1.50::numeric AS d", bind="a"),
        b.sql("SELECT 1 AS v WHERE false", bind="none"),
        b.sql("SELECT id FROM (VALUES (1), (2)) AS t(id)", bind="many"),
        b.sql(
            "SELECT $a AS first, $a.s AS s, $a.d AS d, $none? AS ns, $none.v? AS nsv, "
            "(SELECT sum(id) FROM $many.*) AS total, '{who}' AS who, "
            "'{sys_instance_id}' AS iid, '{sys_label}' AS label"
        ),
    )
    iid, status, res = run(dsn, b.build(root))
    assert status == "completed", output(dsn, iid)
    row = res["rows"][0]
    assert row["first"] == 7 and row["s"] == "x" and row["d"] == Decimal("1.50")
    assert row["ns"] is None and row["nsv"] is None
    assert row["total"] == 3 and row["who"] == "world"
    assert row["iid"] == iid and row["label"] == "lbl"


def test_strict_reference_on_no_rows_fails_step(dsn: str) -> None:
    b = PlanBuilder()
    root = b.seq(b.sql("SELECT 1 WHERE false", bind="x"), b.sql("SELECT $x"))
    iid, status, _ = run(dsn, b.build(root))
    assert status == "failed"
    assert output(dsn, iid) == "$x has no rows — query returned zero results"


def test_column_encodings(dsn: str) -> None:
    b = PlanBuilder()
    _, status, res = run(dsn, b.build(b.sql(
        "SELECT true AS b, 1::int2 AS i2, 2::int8 AS i8, 1.5::float8 AS f, 'NaN'::float8 AS nan, "
        "'t'::text AS t, 12.30::numeric AS n, '2024-01-02 03:04:05+00'::timestamptz AS tz, "
        "'2024-01-02 03:04:05'::timestamp AS ts, '2024-01-02'::date AS d, '{\"a\":1}'::jsonb AS j, "
        "'\\x0102'::bytea AS by, ARRAY[1,2] AS arr, interval '1 day' AS iv, '10.0.0.1'::inet AS ip, "
        "NULL AS nul")))
    assert status == "completed"
    row = res["rows"][0]
    assert row == {
        "b": True, "i2": 1, "i8": 2, "f": Decimal("1.5"), "nan": "NaN", "t": "t",
        "n": Decimal("12.30"), "tz": "2024-01-02T03:04:05+00:00", "ts": "2024-01-02T03:04:05",
        "d": "2024-01-02", "j": {"a": 1}, "by": "\\x0102", "arr": [1, 2], "iv": "1 day",
        "ip": "10.0.0.1", "nul": None,
    }
