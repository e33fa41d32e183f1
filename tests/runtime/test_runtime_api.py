"""The Python API (runtime.api) and timers across worker restarts."""

from __future__ import annotations

import psycopg
import pytest
from helpers import running_worker
from plans import PlanBuilder, single

from runtime import api
from runtime.connection import connect
from runtime.plans import PlanError


def test_start_await_result_signal_cancel(dsn: str) -> None:
    b = PlanBuilder("waiter")
    waiter = b.build(b.seq(b.wait_signal("go", bind="s"), b.sql("SELECT ($s.data)::jsonb AS d")))
    with running_worker(dsn), connect(dsn) as conn:
        assert api.install(conn, single("SELECT 7 AS n", "seven")) == 1
        first = api.start(conn, "seven")
        assert api.await_instance(conn, first, 30) == "completed"
        assert api.result(conn, first) == {"rows": [{"n": 7}], "row_count": 1}

        second = api.start(conn, waiter)
        api.signal(conn, second, "go", {"ok": True})
        assert api.await_instance(conn, second, 30) == "completed"
        assert api.result(conn, second)["rows"][0]["d"] == {"ok": True}

        third = api.start(conn, waiter)
        assert api.cancel(conn, third).startswith(f"Instance {third} cancelled")
        assert api.status(conn, third) == "cancelled"
        assert api.result(conn, third) is None
        listed = api.list_instances(conn, limit=10)
        assert [row.instance_id for row in listed] == [third, second, first]


def test_invalid_plans_are_refused_before_reaching_the_database(dsn: str) -> None:
    plan = single("SELECT 1")
    plan["nodes"][0]["kind"] = "nope"
    with connect(dsn) as conn, pytest.raises(PlanError, match="plan schema"):
        api.start(conn, plan)


def test_start_joins_the_callers_transaction(dsn: str) -> None:
    with connect(dsn) as conn:
        with conn.transaction(force_rollback=True):
            instance = api.start(conn, single("SELECT 1"))
        assert api.status(conn, instance) is None


def test_timer_survives_a_worker_restart(dsn: str) -> None:
    b = PlanBuilder()
    plan = b.build(b.seq(b.sleep(2), b.sql("SELECT 'woke' AS r")))
    with connect(dsn) as conn:
        with running_worker(dsn):
            instance = api.start(conn, plan)
            # the sleep has started once its node is running
            while conn.execute("SELECT status FROM df.nodes WHERE instance_id = %s AND id = 'n0'",
                               (instance,)).fetchone() != ("running",):
                pass
        assert api.status(conn, instance) == "running"
        with running_worker(dsn):
            assert api.await_instance(conn, instance, 30) == "completed"
        assert api.result(conn, instance) == {"rows": [{"r": "woke"}], "row_count": 1}


def test_await_instance_reports_what_it_cannot_wait_for(dsn: str) -> None:
    with connect(dsn) as conn:
        with pytest.raises(psycopg.errors.NoDataFound, match="Instance not found: ffffffff"):
            conn.execute("SELECT df.await_instance('ffffffff', 5)")
        instance = api.start(conn, single("SELECT 1 AS n", "unattended"))
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="must be positive"):
            conn.execute("SELECT df.await_instance(%s, 0)", (instance,))
        # no worker runs: the instance stays pending until the wait gives up
        with pytest.raises(psycopg.errors.QueryCanceled,
                           match=rf"Timeout after 1s waiting for instance {instance} \(status: pending\)"):
            conn.execute("SELECT df.await_instance(%s, 1)", (instance,))
        assert api.status(conn, instance) == "pending"
