"""Chains: a sequence's independent SQL steps run in one message, each in its own transaction.

Every test runs the same workflow with chains and with chains switched off
(``runtime.chains.MAX_CHAIN = 0``) and expects the same outcome, the same node records and
the same effects: a chain changes how steps travel to the server, never what they do.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest
from helpers import eventually, running_worker, start, wait
from plans import PlanBuilder

import runtime.store
import runtime.worker
from runtime import chains
from runtime.chains import Chain
from runtime.connection import WorkerConnection
from runtime.store import _moved_on
from runtime.worker import Worker, WorkerOptions


@pytest.fixture
def chain_calls(monkeypatch: pytest.MonkeyPatch) -> list[Chain | None]:
    """The chains the worker planned (the real planner, watched)."""
    calls: list[Chain | None] = []
    real = chains.plan_chain

    def watched(*args: Any) -> Chain | None:
        planned = real(*args)
        calls.append(planned)
        return planned

    monkeypatch.setattr(runtime.worker, "plan_chain", watched)
    return calls


@pytest.fixture
def log_table(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS chain_log (k text, n int, UNIQUE (k, n))")
        conn.execute("GRANT ALL ON chain_log TO PUBLIC")
    return "chain_log"


def _insert(n: int) -> str:
    return f"INSERT INTO chain_log (k, n) VALUES ('{{sys_label}}', {n}) RETURNING n"


def _mixed_plan() -> dict[str, Any]:
    """Independent steps, a named one and a step that uses it: chains stop around them."""
    b = PlanBuilder("mixed")
    return b.build(b.seq(
        b.sql(_insert(1)), b.sql(_insert(2)), b.sql("SELECT 2 AS two, 'x' AS x"),
        b.sql(_insert(3)), b.sql("SELECT 41 AS v", bind="a"), b.sql(_insert(4)),
        b.sql("SELECT $a.v + 1 AS answer"), b.sql(_insert(5)), b.sql(_insert(6)),
        b.sql(_insert(7)), b.sql("SELECT count(*) AS n FROM chain_log WHERE k = '{sys_label}'"),
    ))


def _run(dsn: str, plan: dict[str, Any], label: str, timeout: float = 60.0) -> dict[str, Any]:
    """Run ``plan`` to its end; what it left behind (without ids and times)."""
    with running_worker(dsn):
        instance = start(dsn, plan, label)
        status = wait(dsn, instance, int(timeout))
    with psycopg.connect(dsn) as conn:
        nodes = conn.execute(
            "SELECT id, status, result, runs, attempts, last_error FROM df.nodes"
            " WHERE instance_id = %s ORDER BY id", (instance,)).fetchall()
        tasks = conn.execute("SELECT count(*) FROM df.tasks WHERE instance_id = %s",
                             (instance,)).fetchone()
        found = conn.execute("SELECT output, failure FROM df.instances WHERE id = %s",
                             (instance,)).fetchone()
        effects = conn.execute("SELECT n FROM chain_log WHERE k = %s ORDER BY n",
                               (label,)).fetchall()
    assert found is not None
    return {"status": status, "nodes": nodes, "tasks": tasks, "output": found[0],
            "error": found[1], "effects": [n for (n,) in effects]}


def _without_chains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chains, "MAX_CHAIN", 0)


def test_a_chain_leaves_what_steps_one_by_one_leave(
    dsn: str, log_table: str, chain_calls: list[Chain | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    chained = _run(dsn, _mixed_plan(), "mixed-chained")
    lengths = [len(c.tasks) for c in chain_calls if c is not None]
    assert lengths and max(lengths) >= 2, chain_calls
    _without_chains(monkeypatch)
    chain_calls.clear()
    plain = _run(dsn, _mixed_plan(), "mixed-plain")
    assert not [c for c in chain_calls if c is not None]
    assert chained == plain
    assert chained["status"] == "completed"
    assert chained["effects"] == [1, 2, 3, 4, 5, 6, 7]
    assert json.loads(chained["output"])["rows"] == [{"n": 7}]
    results = {node: result for node, _, result, *_ in chained["nodes"]}
    assert results["n2"] == {"rows": [{"two": 2, "x": "x"}], "row_count": 1}


def _failing_plan(name: str) -> dict[str, Any]:
    b = PlanBuilder(name)
    return b.build(b.seq(*[b.sql(_insert(n)) for n in (1, 2, 3)], b.sql("SELECT 1 / 0"),
                         *[b.sql(_insert(n)) for n in (4, 5, 6)]))


def test_a_step_that_fails_in_a_chain_fails_as_on_its_own(
    dsn: str, log_table: str, chain_calls: list[Chain | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    chained = _run(dsn, _failing_plan("fails"), "fails-chained")
    assert any(c is not None and len(c.tasks) >= 3 for c in chain_calls), chain_calls
    _without_chains(monkeypatch)
    plain = _run(dsn, _failing_plan("fails"), "fails-plain")
    assert chained == plain
    assert chained["status"] == "failed"
    assert chained["effects"] == [1, 2, 3]  # the steps before committed, none after ran
    assert "division by zero" in f"{chained['output']} {chained['error']}"
    assert chained["tasks"] == (0,)


@pytest.mark.parametrize(("before", "after"), [(0, 3), (1, 3), (1, 0)],
                         ids=["first-step", "second-step", "second-and-last-step"])
def test_a_step_that_fails_early_in_a_chain_fails_as_on_its_own(
    dsn: str, log_table: str, chain_calls: list[Chain | None], monkeypatch: pytest.MonkeyPatch,
    before: int, after: int
) -> None:
    """The chain begins with the instance's first step, in the transaction of its start, and
    goes on in a second message: a failure of the first step rolls back to before it, the start
    stays, and the step fails as on its own; so does a failure in the second message."""
    b = PlanBuilder("fails-early")
    plan = b.build(b.seq(*[b.sql(_insert(n)) for n in range(1, before + 1)],
                         b.sql("SELECT 1 / 0"),
                         *[b.sql(_insert(n)) for n in range(before + 1, before + after + 1)]))
    chained = _run(dsn, plan, "fails-early-chained")
    assert any(c is not None and c.tasks[0].node_id == "n0" for c in chain_calls), chain_calls
    _without_chains(monkeypatch)
    plain = _run(dsn, plan, "fails-early-plain")
    assert chained == plain
    assert chained["status"] == "failed"
    assert chained["effects"] == list(range(1, before + 1))
    assert "division by zero" in f"{chained['output']} {chained['error']}"
    assert chained["tasks"] == (0,)


def test_the_first_step_of_an_instance_begins_its_chain_in_the_start_transaction(
    dsn: str, log_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No bookkeeping call of its own for the first step: the message that follows the claim
    holds the start's writes and the first step under a savepoint, and the next one (sent once
    it has run, planned meanwhile) the rest of the chain; an instance's bookkeeping calls are
    its start's and its finish's."""
    messages: list[list[bytes]] = []
    run, send = WorkerConnection.run_batch, WorkerConnection.send_batch

    def run_spy(self: WorkerConnection, cur: Any, statements: list[bytes]) -> Any:
        messages.append(list(statements))
        return run(self, cur, statements)

    def send_spy(self: WorkerConnection, statements: list[bytes]) -> Any:
        messages.append(list(statements))
        return send(self, statements)

    monkeypatch.setattr(WorkerConnection, "run_batch", run_spy)
    monkeypatch.setattr(WorkerConnection, "send_batch", send_spy)
    b = PlanBuilder("first")
    plan = b.build(b.seq(*[b.sql(_insert(n)) for n in (1, 2, 3, 4)]))
    with running_worker(dsn, concurrency=1):
        assert wait(dsn, start(dsn, plan, "first-warm"), 30) == "completed"  # plan loaded
        messages.clear()
        assert wait(dsn, start(dsn, plan, "first"), 30) == "completed"
    with psycopg.connect(dsn) as conn:
        effects = conn.execute("SELECT n FROM chain_log WHERE k = 'first' ORDER BY n").fetchall()
    assert [n for (n,) in effects] == [1, 2, 3, 4]
    beginning = [m for m in messages if b"SAVEPOINT dfc_chain" in m]
    assert len(beginning) == 1, messages
    first = beginning[0]
    at = first.index(b"SAVEPOINT dfc_chain")
    assert b"_apply(" in first[at - 1] and b'"running"' in first[at - 1]  # the start's writes
    assert b"run_chained_step" in first[at + 1] and b"'n0'" in first[at + 1]
    assert first[at + 2:] == [b"COMMIT", b"BEGIN"]
    rest = messages[messages.index(first) + 1]
    assert [b"'n1'" in s for s in rest] == [True, False, False, False, False, False, False]
    assert b"run_chained_step" in rest[0] and b"'n2'" in rest[3]
    assert rest[1:3] == rest[4:6] == [b"COMMIT", b"BEGIN"]
    assert b"run_step" in rest[6] and b"chained" not in rest[6]  # n3, the last, on its own
    applies = [s for m in messages for s in m if b"dfc_apply(" in s or b"df._apply(" in s]
    assert len(applies) == 2, applies


@pytest.mark.parametrize("before", [2, 0], ids=["mid-chain", "first-step"])
def test_a_transient_failure_in_a_chain_is_retried(
    dsn: str, log_table: str, chain_calls: list[Chain | None], before: int
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE IF NOT EXISTS chain_flaky_calls")
        conn.execute("GRANT ALL ON SEQUENCE chain_flaky_calls TO PUBLIC")
        # fails its first call only: a sequence does not roll back with the step
        conn.execute("""
            CREATE OR REPLACE FUNCTION chain_flaky() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('chain_flaky_calls') = 1 THEN
                    RAISE EXCEPTION 'try again' USING ERRCODE = 'serialization_failure';
                END IF;
                RETURN 1;
            END $$""")
    b = PlanBuilder("flaky")
    plan = b.build(b.seq(*[b.sql(_insert(n)) for n in range(1, before + 1)],
                         b.sql("SELECT chain_flaky()"),
                         *[b.sql(_insert(n)) for n in range(before + 1, before + 3)]))
    found = _run(dsn, plan, "flaky")
    assert any(c is not None for c in chain_calls)
    assert found["status"] == "completed"
    assert found["effects"] == list(range(1, before + 3))
    attempts = {node: attempts for node, _, _, _, attempts, _ in found["nodes"]}
    assert attempts[f"n{before}"] == 2


@pytest.mark.parametrize("before", [2, 0], ids=["mid-chain", "first-step"])
def test_cancelling_an_instance_stops_its_chain(
    dsn: str, log_table: str, chain_calls: list[Chain | None], before: int
) -> None:
    b = PlanBuilder("slow")
    plan = b.build(b.seq(*[b.sql(_insert(n)) for n in range(1, before + 1)],
                         b.sql("SELECT pg_sleep(3600)"),
                         *[b.sql(_insert(n)) for n in range(before + 1, before + 3)]))
    with running_worker(dsn):
        instance = start(dsn, plan, "slow")

        def sleepers() -> int:
            with psycopg.connect(dsn) as conn:
                row = conn.execute("SELECT count(*) FROM pg_stat_activity"
                                   " WHERE wait_event = 'PgSleep'"
                                   " AND datname = current_database()").fetchone()
                return 0 if row is None else int(row[0])

        def sleeping() -> bool:  # the steps before committed, the next one sleeps
            with psycopg.connect(dsn) as conn:
                done = conn.execute("SELECT count(*) FROM chain_log WHERE k = 'slow'").fetchone()
            return done == (before,) and sleepers() > 0

        eventually(sleeping)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT df.cancel(%s)", (instance,))
        assert wait(dsn, instance, 20) == "cancelled"

        def no_work_left() -> bool:  # the interrupted step's task goes once its worker sees it
            with psycopg.connect(dsn) as conn:
                row = conn.execute("SELECT count(*) FROM df.tasks WHERE instance_id = %s",
                                   (instance,)).fetchone()
                return row == (0,)

        eventually(no_work_left)
        eventually(lambda: sleepers() == 0)  # an hour's sleep: only an interruption ends it
    assert any(c is not None for c in chain_calls)
    with psycopg.connect(dsn) as conn:
        effects = conn.execute("SELECT n FROM chain_log WHERE k = 'slow' ORDER BY n").fetchall()
    assert [n for (n,) in effects] == list(range(1, before + 1))


def test_chains_of_many_instances_run_each_step_once(
    dsn: str, log_table: str, chain_calls: list[Chain | None]
) -> None:
    """Several workers on many chained instances at once: every step's effect exactly once."""
    b = PlanBuilder("many")
    plan = b.build(b.seq(*[b.sql(_insert(n)) for n in range(12)]))
    labels = [f"many-{i}" for i in range(24)]
    with running_worker(dsn, concurrency=4), running_worker(dsn, concurrency=4):
        instances = [start(dsn, plan, label) for label in labels]
        statuses = {wait(dsn, instance, 60) for instance in instances}
    assert statuses == {"completed"}
    assert any(c is not None for c in chain_calls)
    with psycopg.connect(dsn) as conn:
        counts = conn.execute("SELECT k, count(*) FROM chain_log WHERE k LIKE 'many-%%'"
                              " GROUP BY k").fetchall()
    assert dict(counts) == {label: 12 for label in labels}


def test_a_chain_that_other_workers_keep_claiming_at_runs_each_step_once(
    dsn: str, log_table: str, chain_calls: list[Chain | None]
) -> None:
    """While a chain runs, another worker's executors are woken again and again: they may take
    a step over (a chain's tasks are held back from them only briefly), but every step runs
    exactly once and the workflow completes."""
    b = PlanBuilder("contended")
    plan = b.build(b.seq(*[b.sql(f"INSERT INTO chain_log (k, n) SELECT '{{sys_label}}', {n}"
                                 " FROM pg_sleep(0.05)") for n in range(10)]))
    stop = threading.Event()

    def poke() -> None:  # wakes the other worker's executors again and again
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("NOTIFY df_work")
                time.sleep(0.005)

    def chain_running() -> bool:  # a step of the chain has committed
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT status FROM df.nodes WHERE instance_id = %s"
                               " AND id = 'n2'", (instance,)).fetchone()
            return row == ("completed",)

    poker = threading.Thread(target=poke)
    with running_worker(dsn, concurrency=1):
        instance = start(dsn, plan, "contended")
        eventually(chain_running)
        with running_worker(dsn, concurrency=2):
            poker.start()
            try:
                assert wait(dsn, instance, 30) == "completed"
            finally:
                stop.set()
                poker.join()
    assert any(c is not None and len(c.tasks) >= 5 for c in chain_calls), chain_calls
    with psycopg.connect(dsn) as conn:
        effects = conn.execute("SELECT n FROM chain_log WHERE k = 'contended' ORDER BY n"
                               ).fetchall()
        runs = conn.execute("SELECT DISTINCT runs FROM df.nodes WHERE instance_id = %s"
                            " AND node_type = 'sql'", (instance,)).fetchall()
    assert [n for (n,) in effects] == list(range(10))
    assert runs == [(1,)]


def test_each_step_of_a_chain_has_its_own_statement_timeout(
    dsn: str, log_table: str, chain_calls: list[Chain | None]
) -> None:
    """The chain is one message, but statement_timeout counts for each statement of it: six
    steps of 0.4 s run under a timeout of 1 s, and a step of 3 s does not."""
    b = PlanBuilder("timed")
    plan = b.build(b.seq(*[b.sql(f"SELECT pg_sleep(0.4), {n} AS n") for n in range(6)],
                         b.sql("SELECT pg_sleep(3)"), b.sql(_insert(1))))
    worker = Worker(dsn, WorkerOptions(concurrency=1, statement_timeout_ms=1_000))
    worker.start()
    try:
        instance = start(dsn, plan, "timed")
        assert wait(dsn, instance, 30) == "failed"
    finally:
        worker.stop()
        worker.join(30)
    assert any(c is not None and len(c.tasks) >= 5 for c in chain_calls), chain_calls
    with psycopg.connect(dsn) as conn:
        statuses = dict(conn.execute("SELECT id, status FROM df.nodes WHERE instance_id = %s",
                                     (instance,)).fetchall())
        failure = conn.execute("SELECT output FROM df.instances WHERE id = %s",
                               (instance,)).fetchone()
    assert [statuses[f"n{n}"] for n in range(6)] == ["completed"] * 6
    assert statuses["n6"] == "failed"
    assert failure is not None and "statement timeout" in str(failure[0])


def test_a_chained_step_moves_its_task_on_in_its_own_statement(
    dsn: str, log_table: str, chain_calls: list[Chain | None]
) -> None:
    """The usual bookkeeping of a chained step (its task moves on, the next node starts) is made
    by df._run_chained_step_moving with typed arguments, not by a list of operations."""
    b = PlanBuilder("moving")
    plan = b.build(b.seq(*[b.sql(_insert(n)) for n in range(5)]))
    found = _run(dsn, plan, "moving")
    assert found["status"] == "completed" and found["effects"] == [0, 1, 2, 3, 4]
    statements = [s for c in chain_calls if c is not None for s in c.statements
                  if s not in (b"COMMIT", b"BEGIN")]
    assert len(statements) >= 3, chain_calls
    assert all(b"run_chained_step_moving" in s for s in statements), statements


def test_a_step_that_fails_in_a_chain_leaves_no_session_lock_behind(
    dsn: str, log_table: str, chain_calls: list[Chain | None]
) -> None:
    """A chained step fails with its transaction rolled back, which does not release the
    session-level advisory locks it took: the worker does before it goes on, and the session's
    settings are the worker's again."""
    b = PlanBuilder("locking")
    plan = b.build(b.seq(
        b.sql(_insert(1)), b.sql(_insert(2)), b.sql(_insert(3)),
        b.sql("SELECT pg_advisory_lock(4712), set_config('work_mem', '77MB', false), 1 / 0"),
        b.sql(_insert(4))))
    with running_worker(dsn, concurrency=1):
        instance = start(dsn, plan, "locking")
        assert wait(dsn, instance, 30) == "failed"
        with psycopg.connect(dsn, autocommit=True) as other:
            sessions = other.execute("SELECT count(*) FROM pg_stat_activity"
                                     " WHERE application_name = 'dfc-worker'").fetchone()
            assert sessions is not None and sessions[0] > 0  # the step's session is still open
            assert other.execute("SELECT pg_try_advisory_lock(4712)").fetchone() == (True,)
            held = other.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND a.application_name = 'dfc-worker'"
            ).fetchone()
            assert held == (0,)
    assert any(c is not None and len(c.tasks) >= 3 for c in chain_calls), chain_calls
    with psycopg.connect(dsn) as conn:
        effects = conn.execute("SELECT n FROM chain_log WHERE k = 'locking' ORDER BY n"
                               ).fetchall()
        failure = conn.execute("SELECT output FROM df.instances WHERE id = %s",
                               (instance,)).fetchone()
    assert [n for (n,) in effects] == [1, 2, 3]
    assert failure == ("SQL execution failed: division by zero",)


def test_a_chain_whose_sequence_goes_while_a_step_runs_leaves_what_steps_one_by_one_leave(
    dsn: str, log_table: str, chain_calls: list[Chain | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sequence of a chain is deleted while a step of it runs (as a race decided elsewhere
    deletes its losers): that step's effects stay, as a step's do whose parent went while it
    ran, and no later step runs, with chains as without them."""

    def run(label: str) -> tuple[list[int], Any]:
        b = PlanBuilder(label)
        plan = b.build(b.seq(
            b.sql(_insert(1)), b.sql(_insert(2)),
            b.sql("INSERT INTO chain_log (k, n) SELECT '{sys_label}', 3 FROM pg_sleep(1)"),
            b.sql(_insert(4)), b.sql(_insert(5))))
        with running_worker(dsn, concurrency=1):
            instance = start(dsn, plan, label)

            def sleeping() -> bool:
                with psycopg.connect(dsn) as conn:
                    row = conn.execute("SELECT count(*) FROM pg_stat_activity"
                                       " WHERE wait_event = 'PgSleep'"
                                       " AND datname = current_database()").fetchone()
                    return row is not None and row[0] > 0

            eventually(sleeping)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM df.tasks WHERE instance_id = %s AND status = 'waiting'",
                             (instance,))
            time.sleep(2.5)  # the sleeping step ends; anything due after it would have run
        with psycopg.connect(dsn, autocommit=True) as conn:
            effects = conn.execute("SELECT n FROM chain_log WHERE k = %s ORDER BY n",
                                   (label,)).fetchall()
            tasks = conn.execute("SELECT count(*) FROM df.tasks WHERE instance_id = %s",
                                 (instance,)).fetchone()
            conn.execute("SELECT df.cancel(%s)", (instance,))
        return [n for (n,) in effects], tasks

    chained = run("orphaned-chained")
    assert any(c is not None and len(c.tasks) >= 3 for c in chain_calls), chain_calls
    _without_chains(monkeypatch)
    assert run("orphaned-plain") == chained
    assert chained == ([1, 2, 3], (0,))


def test_only_the_usual_bookkeeping_goes_as_typed_arguments() -> None:
    move = ["move", "i1", "n3", 7, 3, "ready", "2026-01-01T00:00:00+00:00", {}, {"a": True}, 9, 8]
    started = ["started", "i1", "n3"]
    assert _moved_on([move, started], 8, "i1", 7) == move
    assert _moved_on([move, started], 5, "i1", 7) is None  # another task's row
    assert _moved_on([move, started], 8, "i1", 6) is None  # another parent
    assert _moved_on([move, ["started", "i1", "n4"]], 8, "i1", 7) is None
    assert _moved_on([move, started, ["state", 7, {}]], 8, "i1", 7) is None
    assert _moved_on([["delete", 8], started], 8, "i1", 7) is None


def test_a_chained_step_whose_task_another_worker_holds_is_not_taken_without_waiting(
    dsn: str, log_table: str
) -> None:
    """df._run_chained_step_moving skips a task another session holds (SQLSTATE DFC01) at once:
    waiting for it would count against the step's statement_timeout and fail a step that
    never ran."""
    b = PlanBuilder("held")
    instance = start(dsn, b.build(b.seq(b.sql(_insert(1)), b.sql(_insert(2)))), "held")
    with psycopg.connect(dsn, autocommit=True) as conn:
        # the state a worker leaves after activating the sequence: its first step's task ready
        root = conn.execute("UPDATE df.tasks SET status = 'waiting' WHERE instance_id = %s"
                            " RETURNING id", (instance,)).fetchone()
        assert root is not None
        task = conn.execute(
            "INSERT INTO df.tasks (instance_id, node_id, parent_id, branch, status)"
            " VALUES (%s, 'n0', %s, 0, 'ready') RETURNING id", (instance, root[0])).fetchone()
        assert task is not None
        role = conn.execute("SELECT current_user::regrole::oid").fetchone()
        assert role is not None
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn) as worker:
        holder.execute("SELECT 1 FROM df.tasks WHERE id = %s FOR UPDATE", (task[0],))
        worker.execute("SET statement_timeout = '3s'")
        with pytest.raises(psycopg.Error) as raised:
            worker.execute(
                "SELECT df._run_chained_step_moving(%s, %s, 'n0', clock_timestamp(), %s::regrole,"
                " %s, false, 'public', %s, NULL, nextval(pg_get_serial_sequence('df.tasks', 'id')),"
                " 'n1', 1, NULL, '{}', '{}')",
                (task[0], instance, role[0], "INSERT INTO chain_log (k, n) VALUES ('held', 1)",
                 root[0]))
        assert raised.value.sqlstate == "DFC01"
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM chain_log WHERE k = 'held'").fetchone() == (0,)
        conn.execute("SELECT df.cancel(%s)", (instance,))


def test_a_chain_of_other_bookkeeping_leaves_what_the_usual_one_leaves(
    dsn: str, log_table: str, chain_calls: list[Chain | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chained steps whose bookkeeping is not the usual move go through df._run_chained_step
    with their operations (as a worker of the previous version sends every chained step): the
    same outcome, records and effects."""
    usual = _run(dsn, _mixed_plan(), "mixed-usual")
    monkeypatch.setattr(runtime.store, "_moved_on", lambda *args: None)
    chain_calls.clear()
    general = _run(dsn, _mixed_plan(), "mixed-general")
    statements = [s for c in chain_calls if c is not None for s in c.statements
                  if s not in (b"COMMIT", b"BEGIN")]
    assert statements and all(b"run_chained_step" in s and b"run_chained_step_moving" not in s
                              for s in statements), statements
    assert general == usual
