"""History pruning of finished instances, and the worker heartbeat table."""

from __future__ import annotations

from datetime import timedelta

from helpers import start, wait
from plans import PlanBuilder
from timehelpers import make_clock, query, scalar, until, worker_on


def test_prune_removes_old_finished_instances_in_batches(dsn: str) -> None:
    b = PlanBuilder()
    done = b.build(b.sql("SELECT 1"))
    b2 = PlanBuilder("waiting")
    waiting = b2.build(b2.wait_signal("never"))
    with worker_on(dsn, retention=None):
        finished = [start(dsn, done) for _ in range(5)]
        for instance in finished:
            assert wait(dsn, instance, 30) == "completed"
        running = start(dsn, waiting)
        until(lambda: scalar(dsn, "SELECT df.status(%s)", (running,)) == "running")
    # age everything by 40 days (the default retention is 30)
    scalar(dsn, "UPDATE df.instances SET created_at = created_at - interval '40 days', "
                "completed_at = completed_at - interval '40 days'")
    recent = start(dsn, done)
    with worker_on(dsn, retention=None):  # this test prunes by hand
        assert wait(dsn, recent, 30) == "completed"
    assert scalar(dsn, "SELECT df.prune(interval '30 days', 2)") == 2
    assert scalar(dsn, "SELECT df.prune(interval '30 days', 100)") == 3
    assert scalar(dsn, "SELECT df.prune(interval '30 days', 100)") == 0
    left = {r[0] for r in query(dsn, "SELECT id FROM df.instances")}
    assert left == {running, recent}
    assert scalar(dsn, "SELECT count(*) FROM df.nodes WHERE instance_id = ANY(%s)",
                  (finished,)) == 0


def test_worker_prunes_on_its_own(dsn: str) -> None:
    b = PlanBuilder()
    instance = start(dsn, b.build(b.sql("SELECT 1")))
    with worker_on(dsn):
        assert wait(dsn, instance, 30) == "completed"
    scalar(dsn, "UPDATE df.instances SET completed_at = completed_at - interval '2 days', "
                "created_at = created_at - interval '2 days'")
    with worker_on(dsn, retention=timedelta(days=1), prune_interval_seconds=0.1):
        until(lambda: scalar(dsn, "SELECT count(*) FROM df.instances") == 0)


def test_heartbeat_shows_live_workers(dsn: str) -> None:
    clock = make_clock()
    with worker_on(dsn, clock, concurrency=3) as worker:
        until(lambda: scalar(dsn, "SELECT count(*) FROM df.workers WHERE id = %s",
                             (worker.id,)) == 1)
        assert scalar(dsn, "SELECT concurrency FROM df.workers WHERE id = %s", (worker.id,)) == 3
    # a stopped worker says goodbye
    until(lambda: scalar(dsn, "SELECT count(*) FROM df.workers") == 0)
