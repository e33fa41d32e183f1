"""Retries, timeouts, compensation and cancellation."""

from __future__ import annotations

import psycopg
import pytest
from helpers import output, result, start, wait
from plans import PlanBuilder
from timehelpers import drive, make_clock, node_status, query, scalar, until, worker_on

from runtime.connection import connect


def transient_until_third(sequence: str) -> str:
    return (f"DO $$ BEGIN IF nextval('{sequence}') < 3 THEN "
            "RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END IF; END $$")


def sleeping_backends(dsn: str) -> int:
    # the step runs inside df._run_step_task: look for the wait, not the statement text
    return int(scalar(dsn, "SELECT count(*) FROM pg_stat_activity "
                           "WHERE wait_event = 'PgSleep' AND datname = current_database()"))


# --- retries ---------------------------------------------------------------------------------


def test_transient_sql_error_is_retried_by_default(dsn: str) -> None:
    clock = make_clock()
    scalar(dsn, "CREATE SEQUENCE s1")
    b = PlanBuilder()
    step = b.sql(transient_until_third("s1"))
    plan = b.build(b.seq(step, b.sql("SELECT currval('s1') AS n")))
    # two executors: a failed attempt is recorded while its task is still held, so the other
    # one cannot run it again early (tests/runtime/test_step_failures.py)
    with worker_on(dsn, clock, concurrency=2):
        instance = start(dsn, plan)
        assert drive(dsn, clock, instance, step=5) == "completed"
    assert scalar(dsn, "SELECT last_value FROM s1") == 3
    assert scalar(dsn, "SELECT attempts FROM df.nodes WHERE instance_id = %s AND id = %s",
                  (instance, step)) == 3


def test_other_sql_errors_fail_at_once(dsn: str) -> None:
    scalar(dsn, "CREATE SEQUENCE s2")
    b = PlanBuilder()
    plan = b.build(b.sql("SELECT nextval('s2') / 0"))
    with worker_on(dsn):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "failed"
    assert scalar(dsn, "SELECT last_value FROM s2") == 1
    assert output(dsn, instance) == "SQL execution failed: division by zero"


def test_retry_node_succeeds_on_the_third_attempt(dsn: str) -> None:
    clock = make_clock()
    scalar(dsn, "CREATE SEQUENCE s3")
    b = PlanBuilder()
    body = b.sql("SELECT 42 / (CASE WHEN nextval('s3') < 3 THEN 0 ELSE 1 END) AS v")
    retry = b._add("retry", None, body=body, max_attempts=4, initial_delay_seconds=10,
                   backoff_factor=2, max_delay_seconds=60)
    plan = b.build(retry)
    with worker_on(dsn, clock, concurrency=1):
        instance = start(dsn, plan)
        assert drive(dsn, clock, instance, step=15) == "completed"
    assert result(dsn, instance)["rows"] == [{"v": 42}]
    assert scalar(dsn, "SELECT attempts FROM df.nodes WHERE instance_id = %s AND id = %s",
                  (instance, retry)) == 3
    explain = scalar(dsn, "SELECT df.explain(%s)", (instance,))
    assert "attempt 3/4" in explain


def test_retry_node_gives_up(dsn: str) -> None:
    clock = make_clock()
    b = PlanBuilder()
    plan = b.build(b._add("retry", None, body=b.sql("SELECT 1 / 0"), max_attempts=2,
                          initial_delay_seconds=1, backoff_factor=2, max_delay_seconds=60))
    with worker_on(dsn, clock):
        instance = start(dsn, plan)
        assert drive(dsn, clock, instance, step=5) == "failed"
    assert output(dsn, instance) == "SQL execution failed: division by zero (after 2 attempts)"


# --- timeouts --------------------------------------------------------------------------------


def test_timeout_fails_a_long_wait(dsn: str) -> None:
    clock = make_clock()
    b = PlanBuilder()
    inner = b.sleep(3600)
    plan = b.build(b._add("timeout", None, body=inner, seconds=60))
    with worker_on(dsn, clock):
        instance = start(dsn, plan)
        assert drive(dsn, clock, instance, step=30) == "failed"
    assert output(dsn, instance) == "timed out after 60 seconds"
    assert node_status(dsn, instance, inner) == "cancelled"


def test_timeout_cancels_a_running_statement(dsn: str) -> None:
    b = PlanBuilder()
    inner = b.sql("SELECT pg_sleep(60)")
    plan = b.build(b._add("timeout", None, body=inner, seconds=1))
    with worker_on(dsn):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "failed"
        until(lambda: sleeping_backends(dsn) == 0)
    assert output(dsn, instance) == "timed out after 1 second"
    assert node_status(dsn, instance, inner) == "cancelled"


def test_timeout_passes_a_quick_result_through(dsn: str) -> None:
    b = PlanBuilder()
    plan = b.build(b._add("timeout", None, body=b.sql("SELECT 7 AS n"), seconds=30))
    with worker_on(dsn):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "completed"
    assert result(dsn, instance)["rows"] == [{"n": 7}]


# --- compensation ----------------------------------------------------------------------------


def test_compensation_runs_in_reverse_order_once(dsn: str) -> None:
    scalar(dsn, "CREATE TABLE log (n serial, what text)")
    b = PlanBuilder()
    steps = [
        b._add("undo", None, body=b.sql(f"INSERT INTO log (what) VALUES ('do {x}')"),
               undo=b.sql(f"INSERT INTO log (what) VALUES ('undo {x}')"))
        for x in ("a", "b", "c")
    ]
    plan = b.build(b.seq(steps[0], steps[1], b.sql("SELECT 1 / 0"), steps[2]))
    with worker_on(dsn):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "failed"
    assert [r[0] for r in query(dsn, "SELECT what FROM log ORDER BY n")] == [
        "do a", "do b", "undo b", "undo a",
    ]
    assert output(dsn, instance) == (
        "SQL execution failed: division by zero (compensated: 2 undo steps ran)")


def test_no_compensation_when_all_goes_well(dsn: str) -> None:
    scalar(dsn, "CREATE TABLE log2 (what text)")
    b = PlanBuilder()
    plan = b.build(b._add("undo", None, body=b.sql("INSERT INTO log2 VALUES ('do')"),
                          undo=b.sql("INSERT INTO log2 VALUES ('undo')")))
    with worker_on(dsn):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "completed"
    assert [r[0] for r in query(dsn, "SELECT what FROM log2")] == ["do"]


# --- cancellation ----------------------------------------------------------------------------


def test_cancel_stops_a_statement_in_flight(dsn: str) -> None:
    b = PlanBuilder()
    plan = b.build(b.seq(b.sql("SELECT pg_sleep(60)"), b.sql("SELECT 'never'")))
    with worker_on(dsn):
        instance = start(dsn, plan)
        until(lambda: sleeping_backends(dsn) == 1)
        with connect(dsn) as conn:
            conn.execute("SELECT df.cancel(%s, 'stop')", (instance,))
        until(lambda: sleeping_backends(dsn) == 0)
        until(lambda: node_status(dsn, instance, "n0") == "cancelled")
    assert scalar(dsn, "SELECT df.status(%s)", (instance,)) == "cancelled"
    assert node_status(dsn, instance, "n1") == "pending"


def waiting_for_a_cancel(dsn: str) -> int:
    # the worker waits for the lock that df.cancel holds until it commits (class 1147489355)
    return int(scalar(dsn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                           "AND classid = 1147489355 AND NOT granted AND database = "
                           "(SELECT oid FROM pg_database WHERE datname = current_database())"))


@pytest.mark.parametrize("ending", ["COMMIT", "ROLLBACK"])
def test_an_interrupted_step_waits_for_the_cancel_that_interrupted_it(
    dsn: str, ending: str
) -> None:
    """df.cancel interrupts the step at once but commits later: the worker records the step's
    end only then, finding the instance cancelled (no retry, no task left behind) or, when the
    cancel was rolled back, the step interrupted from outside (it runs again)."""
    b = PlanBuilder()
    plan = b.build(b.seq(b.sql("SELECT pg_sleep(60)"), b.sql("SELECT 'never'")))
    with worker_on(dsn):
        instance = start(dsn, plan)
        until(lambda: sleeping_backends(dsn) == 1)
        with psycopg.connect(dsn) as conn:  # a transaction, left open
            conn.execute("SELECT df.cancel(%s, 'stop')", (instance,))
            until(lambda: sleeping_backends(dsn) == 0)
            until(lambda: waiting_for_a_cancel(dsn) == 1)
            conn.execute(ending)
        if ending == "ROLLBACK":
            until(lambda: sleeping_backends(dsn) == 1)  # its second attempt
            assert scalar(dsn, "SELECT df.status(%s)", (instance,)) == "running"
            with connect(dsn) as conn:
                conn.execute("SELECT df.cancel(%s, 'stop')", (instance,))
        until(lambda: scalar(dsn, "SELECT count(*) FROM df.tasks WHERE instance_id = %s",
                             (instance,)) == 0)
        assert wait(dsn, instance, 30) == "cancelled"
    assert output(dsn, instance) == "stop"
    assert node_status(dsn, instance, "n0") == "cancelled"
    assert node_status(dsn, instance, "n1") == "pending"


def test_join_fails_fast_and_cancels_its_siblings(dsn: str) -> None:
    b = PlanBuilder()
    slow = b.sql("SELECT pg_sleep(60)")
    plan = b.build(b.join(slow, b.seq(b.sleep(1), b.sql("SELECT 1 / 0"))))
    with worker_on(dsn, concurrency=3):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "failed"
        until(lambda: sleeping_backends(dsn) == 0)
        until(lambda: node_status(dsn, instance, slow) == "cancelled")
    assert output(dsn, instance) == "JOIN branch 2 failed: SQL execution failed: division by zero"


def test_race_cancels_its_losers(dsn: str) -> None:
    b = PlanBuilder()
    loser = b.sql("SELECT pg_sleep(60)")
    plan = b.build(b.race(loser, b.seq(b.sleep(1), b.sql("SELECT 'won' AS w"))))
    with worker_on(dsn, concurrency=3):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "completed"
        until(lambda: sleeping_backends(dsn) == 0)
        until(lambda: node_status(dsn, instance, loser) == "cancelled")
    assert result(dsn, instance)["rows"] == [{"w": "won"}]
    nodes = {r[0]: r[1] for r in query(
        dsn, "SELECT node_id, status FROM df.instance_nodes(%s)", (instance,))}
    assert nodes[loser] == "cancelled"


def test_cancel_of_a_waiting_instance_marks_running_nodes(dsn: str) -> None:
    b = PlanBuilder()
    plan = b.build(b.join(b.wait_signal("x"), b.sleep(3600)))
    with worker_on(dsn):
        instance = start(dsn, plan)
        until(lambda: node_status(dsn, instance, "n0") == "running"
              and node_status(dsn, instance, "n1") == "running")
        with connect(dsn) as conn:
            conn.execute("SELECT df.cancel(%s)", (instance,))
    statuses = {r[0]: r[1] for r in query(
        dsn, "SELECT id, status FROM df.nodes WHERE instance_id = %s", (instance,))}
    assert statuses == {"n0": "cancelled", "n1": "cancelled", "n2": "cancelled"}
    assert scalar(dsn, "SELECT count(*) FROM df.tasks WHERE instance_id = %s", (instance,)) == 0

