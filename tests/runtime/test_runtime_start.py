"""df.start runs in the caller's transaction."""

from __future__ import annotations

import json
import time

import psycopg
from helpers import running_worker, wait
from plans import single

from runtime.connection import connect


def test_rolled_back_start_leaves_nothing(dsn: str) -> None:
    with running_worker(dsn), connect(dsn) as conn:
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT df.start(%s)", (json.dumps(single("SELECT 1")),))
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM df.instances), (SELECT count(*) FROM df.nodes), "
            "(SELECT count(*) FROM df.tasks)").fetchone()
    assert counts == (0, 0, 0)


def test_start_runs_only_after_commit(dsn: str) -> None:
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE seen (x int)")
    with running_worker(dsn), connect(dsn) as conn:
        with conn.transaction():
            row = conn.execute("SELECT df.start(%s)",
                               (json.dumps(single("INSERT INTO seen VALUES (1)")),)).fetchone()
            assert row is not None
            iid = row[0]
            time.sleep(1.5)  # a long caller transaction: the worker cannot see the instance yet
            with connect(dsn) as other:
                assert other.execute("SELECT count(*) FROM seen").fetchone() == (0,)
        assert wait(dsn, iid) == "completed"
        assert conn.execute("SELECT count(*) FROM seen").fetchone() == (1,)


def test_installed_plans_are_versioned(dsn: str) -> None:
    with running_worker(dsn), connect(dsn) as conn:
        v1 = conn.execute("SELECT df.install_plan(%s)", (json.dumps(single("SELECT 1 AS v", "p")),)).fetchone()
        again = conn.execute("SELECT df.install_plan(%s)", (json.dumps(single("SELECT 1 AS v", "p")),)).fetchone()
        first = conn.execute("SELECT df.start('p')").fetchone()
        v2 = conn.execute("SELECT df.install_plan(%s)", (json.dumps(single("SELECT 2 AS v", "p")),)).fetchone()
        second = conn.execute("SELECT df.start('p')").fetchone()
        assert (v1, again, v2) == ((1,), (1,), (2,))
        assert first is not None and second is not None
        assert wait(dsn, first[0]) == "completed" and wait(dsn, second[0]) == "completed"
        r1 = conn.execute("SELECT df.result(%s)::jsonb", (first[0],)).fetchone()
        r2 = conn.execute("SELECT df.result(%s)::jsonb", (second[0],)).fetchone()
        info = conn.execute("SELECT function_name, function_version FROM df.instance_info(%s)",
                            (second[0],)).fetchone()
    assert r1 == ({"rows": [{"v": 1}], "row_count": 1},)
    assert r2 == ({"rows": [{"v": 2}], "row_count": 1},)
    assert info == ("p", "2")


def test_concurrent_starts_of_one_plan_do_not_wait_for_each_others_commit(dsn: str) -> None:
    """Applications start the same plan (or single statements, all named sql) from many
    connections at once: a start whose plan is stored already takes no lock another caller's
    open transaction holds."""
    plan = json.dumps(single("SELECT 1 AS v", "shared"))
    with connect(dsn) as first, connect(dsn) as second:
        ids = [first.execute("SELECT df.start(%s)", (plan,)).fetchone(),
               first.execute("SELECT df.start('SELECT 42')").fetchone()]
        with first.transaction(force_rollback=True):
            first.execute("SELECT df.start(%s)", (plan,))
            first.execute("SELECT df.start('SELECT 42')")
            with second.transaction(force_rollback=True):
                second.execute("SET LOCAL lock_timeout = '2s'")
                ids += [second.execute("SELECT df.start(%s)", (plan,)).fetchone(),
                        second.execute("SELECT df.start('SELECT 42')").fetchone()]
                plans = second.execute(
                    "SELECT count(DISTINCT i.plan_id) FILTER (WHERE p.name = 'shared'),"
                    " count(DISTINCT i.plan_id) FILTER (WHERE p.name = 'sql')"
                    " FROM df.instances i JOIN df.plans p ON p.id = i.plan_id"
                    " WHERE i.id = ANY (%s)", ([row[0] for row in ids if row],)).fetchone()
    assert plans == (1, 1)  # the stored versions, not new ones


def test_a_new_version_is_stored_once_by_concurrent_starts(dsn: str) -> None:
    """Two callers start a plan that is not stored yet: the second one waits for the first
    one's version and uses it."""
    plan = json.dumps(single("SELECT 2 AS v", "raced"))
    with connect(dsn) as first, connect(dsn) as second:
        with first.transaction():
            first.execute("SELECT df.start(%s)", (plan,))
            second.execute("SET lock_timeout = '300ms'")
            try:
                second.execute("SELECT df.start(%s)", (plan,))
            except psycopg.errors.LockNotAvailable:
                waited = True
            else:
                waited = False
            second.rollback()
        second.execute("SET lock_timeout = 0")
        second.execute("SELECT df.start(%s)", (plan,))
        versions = second.execute("SELECT count(*) FROM df.plans WHERE name = 'raced'").fetchone()
    assert waited
    assert versions == (1,)


def test_list_instances_keyset_pagination(dsn: str) -> None:
    with connect(dsn) as conn:
        ids = [conn.execute("SELECT df.start('SELECT 1', 'page')").fetchone()[0] for _ in range(5)]  # type: ignore[index]
        seen: list[str] = []
        cursor = None
        while True:
            rows = conn.execute("SELECT instance_id, next_cursor FROM df.list_instances(NULL, 2, 'page', %s)",
                                (cursor,)).fetchall()
            seen += [r[0] for r in rows]
            cursor = rows[-1][1] if rows else None
            if cursor is None:
                break
        assert seen == list(reversed(ids))
        basic = conn.execute("SELECT instance_id FROM df.list_instances()").fetchall()
        assert [r[0] for r in basic] == list(reversed(ids))
