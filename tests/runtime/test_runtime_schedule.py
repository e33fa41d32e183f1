"""Durable timers: sleep and wait_for_schedule on the test clock, and one short real sleep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helpers import result, start, wait
from plans import PlanBuilder
from timehelpers import EPOCH, due_at, make_clock, node_status, scalar, status, until, worker_on


def test_real_short_sleep(dsn: str) -> None:
    b = PlanBuilder()
    plan = b.build(b.seq(b.sleep(1), b.sql("SELECT 'woke' AS w")))
    with worker_on(dsn):
        instance = start(dsn, plan)
        assert wait(dsn, instance, 30) == "completed"
    assert result(dsn, instance) == {"rows": [{"w": "woke"}], "row_count": 1}
    started, finished = scalar(
        dsn, "SELECT array[min(started_at), max(updated_at)] FROM df.nodes WHERE instance_id = %s",
        (instance,))
    assert finished - started >= timedelta(seconds=1)


def test_day_long_sleep_on_the_test_clock(dsn: str) -> None:
    clock = make_clock()
    b = PlanBuilder()
    sleep = b.sleep(86_400)
    plan = b.build(b.seq(sleep, b.sql("SELECT 1 AS done")))
    with worker_on(dsn, clock):
        instance = start(dsn, plan)
        until(lambda: due_at(dsn, instance, sleep) is not None)
        assert due_at(dsn, instance, sleep) == EPOCH + timedelta(days=1)
        clock.advance(hours=23, minutes=59)
        assert status(dsn, instance) == "running"
        clock.advance(minutes=1)
        assert wait(dsn, instance, 30) == "completed"
    assert scalar(dsn, "SELECT result FROM df.nodes WHERE instance_id = %s AND id = %s",
                  (instance, sleep)) == {"slept": True, "seconds": 86_400}


def test_wait_for_schedule_in_a_time_zone(dsn: str) -> None:
    clock = make_clock()  # Monday 2100-01-04 00:00 UTC
    b = PlanBuilder()
    schedule = b._add("wait_schedule", None, cron="0 9 * * 1-5", time_zone="Europe/Paris")
    plan = b.build(b.seq(schedule, b.sql("SELECT 'fired' AS f")))
    with worker_on(dsn, clock):
        instance = start(dsn, plan)
        until(lambda: due_at(dsn, instance, schedule) is not None)
        # 09:00 in Paris in winter is 08:00 UTC
        assert due_at(dsn, instance, schedule) == datetime(2100, 1, 4, 8, 0, tzinfo=UTC)
        clock.set(datetime(2100, 1, 4, 8, 0, tzinfo=UTC))
        assert wait(dsn, instance, 30) == "completed"
    assert scalar(dsn, "SELECT result FROM df.nodes WHERE instance_id = %s AND id = %s",
                  (instance, schedule)) == {"scheduled": True}


def test_schedule_loop_is_drift_free_and_fires_once_after_downtime(dsn: str) -> None:
    clock = make_clock()
    scalar(dsn, "CREATE TABLE ticks (n serial PRIMARY KEY)")
    b = PlanBuilder()
    schedule = b._add("wait_schedule", None, cron="0 * * * *", time_zone=None)
    plan = b.build(b.loop(b.seq(schedule, b.sql("INSERT INTO ticks DEFAULT VALUES"))))
    with worker_on(dsn, clock):
        instance = start(dsn, plan)
        fires = []
        for hour in range(1, 4):
            until(lambda: due_at(dsn, instance, schedule) is not None)
            fires.append(due_at(dsn, instance, schedule))
            clock.set(EPOCH + timedelta(hours=hour, seconds=30 * hour))  # late by 30 s × hour
            until(lambda expected=hour: scalar(dsn, "SELECT count(*) FROM ticks") == expected)
        # on the hour every hour, whatever the lateness of the previous fire
        assert fires == [EPOCH + timedelta(hours=h) for h in range(1, 4)]
    # the worker is down for five hours ...
    clock.advance(hours=5)
    with worker_on(dsn, clock):
        until(lambda: scalar(dsn, "SELECT count(*) FROM ticks") == 4)
        until(lambda: due_at(dsn, instance, schedule) is not None)
        # ... and fires once, then waits for the next hour after now
        assert due_at(dsn, instance, schedule) == EPOCH + timedelta(hours=9)
        assert scalar(dsn, "SELECT count(*) FROM ticks") == 4
        assert node_status(dsn, instance, schedule) == "running"
