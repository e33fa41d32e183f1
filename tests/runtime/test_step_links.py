"""dblink connections a step opens are closed after it, so a later step cannot act through them.

A dblink connection belongs to the worker's session, not to the step's transaction: left open,
a step of another role could use it by name and act as the role that opened it.
"""

from __future__ import annotations

from helpers import output, result, running_worker, start, wait
from plans import PlanBuilder

LOOPBACK = ("format('host=%s port=%s dbname=%s user=%s', "
            "split_part(current_setting('unix_socket_directories'), ',', 1), "
            "current_setting('port'), current_database(), current_user)")


def test_a_named_connection_is_closed_after_its_step(linked: str) -> None:
    b = PlanBuilder()
    plan = b.build(b.seq(b.sql(f"SELECT links.dblink_connect('kept', {LOOPBACK}) AS r"),
                         b.sql("SELECT links.dblink_get_connections() AS open")))
    with running_worker(linked, concurrency=1):
        instance = start(linked, plan)
        assert wait(linked, instance) == "completed"
    assert result(linked, instance) == {"rows": [{"open": None}], "row_count": 1}


def test_the_unnamed_connection_is_closed_after_its_step(linked: str) -> None:
    b = PlanBuilder()
    plan = b.build(b.seq(b.sql(f"SELECT links.dblink_connect({LOOPBACK}) AS r"),
                         b.sql("SELECT x FROM links.dblink('SELECT 1') AS t(x integer)")))
    with running_worker(linked, concurrency=1):
        instance = start(linked, plan)
        assert wait(linked, instance) == "failed"
    assert "connection not available" in (output(linked, instance) or "")


def test_a_failing_step_leaves_no_connection_either(linked: str) -> None:
    b = PlanBuilder()
    failing = b.build(b.sql(f"SELECT CASE WHEN links.dblink_connect('left', {LOOPBACK}) = 'OK' "
                            "THEN 1 / 0 END AS r"))
    b = PlanBuilder()
    probe = b.build(b.sql("SELECT links.dblink_get_connections() AS open"))
    with running_worker(linked, concurrency=1):
        first = start(linked, failing)
        assert wait(linked, first) == "failed"
        second = start(linked, probe)
        assert wait(linked, second) == "completed"
    assert "division by zero" in (output(linked, first) or "")
    assert result(linked, second) == {"rows": [{"open": None}], "row_count": 1}


def test_steps_run_as_before_without_dblink(dsn: str) -> None:
    b = PlanBuilder()
    plan = b.build(b.seq(b.sql("SELECT 1 AS one"), b.sql("SELECT 2 AS two")))
    with running_worker(dsn, concurrency=1):
        instance = start(dsn, plan)
        assert wait(dsn, instance) == "completed"
    assert result(dsn, instance) == {"rows": [{"two": 2}], "row_count": 1}
