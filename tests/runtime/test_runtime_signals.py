"""Signals: buffered, FIFO per name, one signal per wait, in branches and loops, timeouts."""

from __future__ import annotations

import psycopg
import pytest
from helpers import result, start, wait
from plans import PlanBuilder
from timehelpers import due_at, make_clock, node_status, scalar, until, worker_on

from runtime.connection import connect


def signal(dsn: str, instance: str, name: str, data: str = "{}") -> str:
    with connect(dsn) as conn:
        row = conn.execute("SELECT df.signal(%s, %s, %s)", (instance, name, data)).fetchone()
        assert row is not None
        return str(row[0])


def waiting(dsn: str, instance: str, node: str) -> bool:
    return node_status(dsn, instance, node) == "running"


def test_signal_sent_before_the_wait_starts_is_buffered(dsn: str) -> None:
    clock = make_clock()
    b = PlanBuilder()
    wait_node = b.wait_signal("go", bind="got")
    sleep = b.sleep(3600)
    plan = b.build(b.seq(sleep, wait_node))
    with worker_on(dsn, clock):
        instance = start(dsn, plan)
        assert signal(dsn, instance, "go", '{"n": 1}') == "OK"
        until(lambda: due_at(dsn, instance, sleep) is not None)
        assert node_status(dsn, instance, wait_node) == "pending"  # the wait has not started
        clock.advance(3600)
        assert wait(dsn, instance, 30) == "completed"
    assert result(dsn, instance) == {"signal_name": "go", "timed_out": False, "data": {"n": 1}}


def test_signal_during_the_wait(dsn: str) -> None:
    b = PlanBuilder()
    wait_node = b.wait_signal("approve")
    plan = b.build(b.seq(wait_node, b.sql("SELECT 'approved' AS s")))
    with worker_on(dsn):
        instance = start(dsn, plan)
        until(lambda: waiting(dsn, instance, wait_node))
        signal(dsn, instance, "approve", "plain text")
        assert wait(dsn, instance, 30) == "completed"
    assert scalar(dsn, "SELECT result FROM df.nodes WHERE instance_id = %s AND id = %s",
                  (instance, wait_node))["data"] == "plain text"


def test_signal_after_the_instance_finished_is_an_error(dsn: str) -> None:
    b = PlanBuilder()
    plan = b.build(b.sql("SELECT 1"))
    with worker_on(dsn):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "completed"
    with pytest.raises(psycopg.Error) as info:
        signal(dsn, instance, "late")
    assert f"Instance {instance} is completed" in str(info.value)
    with pytest.raises(psycopg.Error) as unknown:
        signal(dsn, "deadbeef", "x")
    assert "Instance not found or access denied: deadbeef" in str(unknown.value)


def test_fifo_per_name_and_one_signal_per_wait(dsn: str) -> None:
    b = PlanBuilder()
    first, second = b.wait_signal("step", bind="a"), b.wait_signal("step", bind="b")
    plan = b.build(b.seq(first, second, b.sql("SELECT $a.data AS a, $b.data AS b")))
    with worker_on(dsn):
        instance = start(dsn, plan)
        signal(dsn, instance, "other", '"ignored"')
        signal(dsn, instance, "step", "1")
        signal(dsn, instance, "step", "2")
        assert wait(dsn, instance, 30) == "completed"
    assert result(dsn, instance)["rows"] == [{"a": 1, "b": 2}]
    # the unrelated signal stays buffered
    assert scalar(dsn, "SELECT count(*) FROM df.signals WHERE instance_id = %s", (instance,)) == 1


def test_one_signal_satisfies_one_of_two_parallel_waits(dsn: str) -> None:
    b = PlanBuilder()
    left, right = b.wait_signal("go"), b.wait_signal("go")
    plan = b.build(b.join(left, right))
    with worker_on(dsn):
        instance = start(dsn, plan)
        until(lambda: waiting(dsn, instance, left) and waiting(dsn, instance, right))
        signal(dsn, instance, "go", '"first"')
        until(lambda: {node_status(dsn, instance, left), node_status(dsn, instance, right)}
              == {"completed", "running"})
        signal(dsn, instance, "go", '"second"')
        assert wait(dsn, instance, 30) == "completed"
    assert sorted(r["data"] for r in result(dsn, instance)) == ["first", "second"]


def test_wait_inside_a_race_branch(dsn: str) -> None:
    b = PlanBuilder()
    plan = b.build(b.race(b.wait_signal("a"), b.wait_signal("b")))
    with worker_on(dsn):
        instance = start(dsn, plan)
        signal(dsn, instance, "b", '{"winner": "b"}')
        assert wait(dsn, instance, 30) == "completed"
    assert result(dsn, instance) == {"signal_name": "b", "timed_out": False,
                                     "data": {"winner": "b"}}


def test_waits_in_a_loop_consume_one_signal_each(dsn: str) -> None:
    scalar(dsn, "CREATE TABLE got (n int)")
    b = PlanBuilder()
    body = b.seq(b.wait_signal("item", bind="item"),
                 b.sql("INSERT INTO got VALUES (($item.data)::int)"))
    plan = b.build(b.loop(body, b.sql("SELECT count(*) < 3 FROM got")))
    with worker_on(dsn):
        instance = start(dsn, plan)
        for n in (10, 20, 30):
            signal(dsn, instance, "item", str(n))
        assert wait(dsn, instance, 30) == "completed"
    assert [r[0] for r in _rows(dsn, "SELECT n FROM got ORDER BY n")] == [10, 20, 30]


def test_timeout_on_the_test_clock(dsn: str) -> None:
    clock = make_clock()
    b = PlanBuilder()
    plan = b.build(b.wait_signal("never", timeout=600))
    with worker_on(dsn, clock):
        instance = start(dsn, plan)
        until(lambda: waiting(dsn, instance, "n0"))
        clock.advance(599)
        assert scalar(dsn, "SELECT df.status(%s)", (instance,)) == "running"
        clock.advance(1)
        assert wait(dsn, instance, 30) == "completed"
    assert result(dsn, instance) == {"signal_name": "never", "timed_out": True, "data": None}


def _rows(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with connect(dsn) as conn:
        return list(conn.execute(sql).fetchall())
