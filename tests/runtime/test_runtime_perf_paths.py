"""The step fast path: held-back writes, chained transactions, prepared statements.

Writes the store holds back (runtime.connection.WorkerConnection) must behave exactly like
writes executed at once: visible to the next statement, gone with a failed block, committed with
the step. Values bound as literals must arrive unchanged. A step must not be able to replace the
worker's prepared statements.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from helpers import result, run, running_worker, start, wait
from hypothesis import given, settings
from hypothesis import strategies as st
from plans import PlanBuilder, single

from runtime.connection import WorkerConnection, connect, fast_dumps
from runtime.jsonvalues import dumps, loads
from runtime.store import Store
from runtime.worker import Worker


def _instance(dsn: str) -> tuple[str, int]:
    """A pending instance of a one-step plan and its root task."""
    iid = start(dsn, single("SELECT 1"))
    with connect(dsn) as conn:
        row = conn.execute("SELECT id FROM df.tasks WHERE instance_id = %s", (iid,)).fetchone()
        assert row is not None
        return iid, int(row[0])


def _worker_conn(dsn: str) -> WorkerConnection:
    conn = connect(dsn, worker=True)
    assert isinstance(conn, WorkerConnection)
    return conn


TRICKY: dict[str, Any] = {
    "quote": "it's \"quoted\"",
    "backslash": "C:\\path\\n\\u0041",
    "unicode": "żółć — 日本語 — 🚀",
    "percent": "100% %(name)s %s",
    "number": Decimal("1.50"),
    "big": 12345678901234567890,
    "nested": {"b": [1, None, True, False, "x"], "a": {}},
}


def test_held_writes_are_seen_by_the_next_statement(dsn: str) -> None:
    iid, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        with conn.transaction():
            store.update_task_state(task_id, {"held": TRICKY})
            assert conn.holding
            # a raw statement of the session comes after the held write
            row = conn.execute("SELECT state FROM df.tasks WHERE id = %s", (task_id,)).fetchone()
            assert row is not None and row[0] == {"held": TRICKY}
            store.update_task_state(task_id, {"second": 2})
            locked = store.lock_task(task_id)  # a store read: sent in the same message
            assert locked is not None and locked.state == {"second": 2}
    with connect(dsn) as conn:
        row = conn.execute("SELECT state FROM df.tasks WHERE id = %s", (task_id,)).fetchone()
        assert row is not None and row[0] == {"second": 2}
    assert iid


def test_held_writes_commit_with_the_block(dsn: str) -> None:
    iid, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        with conn.transaction():
            store.node_started(iid, "n0")
            store.node_finished(iid, "n0", "completed", {"rows": [TRICKY], "row_count": 1})
            store.delete_task(task_id)
    with connect(dsn) as conn:
        node = conn.execute("SELECT status, result, runs FROM df.nodes WHERE instance_id = %s",
                            (iid,)).fetchone()
        assert node == ("completed", {"rows": [TRICKY], "row_count": 1}, 1)
        assert conn.execute("SELECT count(*) FROM df.tasks WHERE id = %s", (task_id,)).fetchone() == (0,)


def test_failed_blocks_drop_their_held_writes(dsn: str) -> None:
    iid, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        with conn.transaction():
            store.update_task_state(task_id, {"kept": True})
            with pytest.raises(ZeroDivisionError), conn.transaction():
                store.update_task_state(task_id, {"dropped": True})
                raise ZeroDivisionError
            store.node_started(iid, "n0")
        with pytest.raises(ZeroDivisionError), conn.transaction():
            store.delete_task(task_id)
            raise ZeroDivisionError
        assert not conn.take_held()
    with connect(dsn) as conn:
        row = conn.execute("SELECT state FROM df.tasks WHERE id = %s", (task_id,)).fetchone()
        assert row is not None and row[0] == {"kept": True}
        runs = conn.execute("SELECT runs FROM df.nodes WHERE instance_id = %s", (iid,)).fetchone()
        assert runs == (1,)


def test_a_task_locked_with_the_step_is_read_fresh_after_a_write(dsn: str) -> None:
    _, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        role = conn.execute("SELECT oid FROM pg_roles WHERE rolname = current_user").fetchone()
        assert role is not None
        with conn.transaction():
            run = store.run_step(task_id, role[0], "SELECT 7 AS n", True, "public",
                                 then_lock=task_id)
            assert run.got and run.rows == [{"n": 7}] and run.error is None
            locked = store.lock_task(task_id)  # answered from the step's round trip
            assert locked is not None and locked.id == task_id and locked.state == {}
            store.run_step(task_id, role[0], "SELECT 1", True, "public", then_lock=task_id)
            store.update_task_state(task_id, {"after": True})
            locked = store.lock_task(task_id)  # the held write makes it ask again
            assert locked is not None and locked.state == {"after": True}
        with pytest.raises(ZeroDivisionError), conn.transaction():
            store.run_step(task_id, role[0], "SELECT 1", True, "public", then_lock=task_id)
            raise ZeroDivisionError
        assert not conn.locked  # the lock went with the failed block


def test_an_explicit_rollback_ends_the_block_quietly(dsn: str) -> None:
    _, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        with conn.transaction():
            store.update_task_state(task_id, {"n": 1})
            raise psycopg.Rollback()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with connect(dsn) as conn:
        row = conn.execute("SELECT state FROM df.tasks WHERE id = %s", (task_id,)).fetchone()
        assert row is not None and row[0] == {}


def test_chained_transaction_is_committed_before_statements_outside_blocks(dsn: str) -> None:
    _, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        with conn.transaction():
            store.update_task_state(task_id, {"n": 1})
        # the commit opened the next transaction; a statement outside any block must not run
        # in it (VACUUM refuses to run inside a transaction block)
        conn.execute("VACUUM df.tasks")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with conn.transaction():
            store.update_task_state(task_id, {"n": 2})
        with conn.transaction():  # adopts the open transaction
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
            store.update_task_state(task_id, {"n": 3})
    with connect(dsn) as conn:
        row = conn.execute("SELECT state FROM df.tasks WHERE id = %s", (task_id,)).fetchone()
        assert row is not None and row[0] == {"n": 3}


def test_batched_writes_use_prepared_statements_after_the_first_step(dsn: str) -> None:
    _, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        conn.chain = False
        store = Store(conn)
        for n in range(3):
            with conn.transaction():
                store.update_task_state(task_id, {"n": n, **TRICKY})
        names = {r[0] for r in conn.execute("SELECT name FROM pg_prepared_statements").fetchall()}
        assert "dfc_apply" in names
        row = conn.execute("SELECT state FROM df.tasks WHERE id = %s", (task_id,)).fetchone()
        assert row is not None and row[0] == {"n": 2, **TRICKY}


def test_chains_of_steps_carry_results_through_held_writes(dsn: str) -> None:
    # the first step's result travels in a held node update and in the next task's scope
    text = json.dumps({k: str(v) if isinstance(v, Decimal) else v for k, v in TRICKY.items()})
    b = PlanBuilder()
    root = b.seq(b.sql("SELECT '" + text.replace("'", "''") + "'::json AS v", bind="r"),
                 b.sql("SELECT $r::json AS again"))
    _, status, value = run(dsn, b.build(root))
    assert status == "completed"
    assert value["rows"][0]["again"] == loads(text)


@pytest.mark.parametrize("statement", [
    "PREPARE mine AS SELECT 1",
    "DEALLOCATE ALL",
    "DO $$ BEGIN EXECUTE 'PREPARE mine AS SELECT 1'; END $$",
    # one of the worker's own replaced: as many statements as before, one of them new
    "DO $$ BEGIN IF EXISTS (SELECT FROM pg_prepared_statements WHERE name = 'dfc_apply') THEN "
    "EXECUTE 'DEALLOCATE dfc_apply'; END IF; "
    "EXECUTE 'PREPARE dfc_apply(json) AS SELECT 1'; END $$",
    "DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; EXECUTE 'PREPARE mine AS SELECT 1'; END $$",
])
def test_steps_cannot_touch_the_sessions_prepared_statements(dsn: str, statement: str) -> None:
    b = PlanBuilder()
    warm = b.seq(*[b.sql("SELECT 1") for _ in range(6)])  # the worker has prepared statements
    with running_worker(dsn, concurrency=1):
        assert wait(dsn, start(dsn, b.build(warm))) == "completed"
        bad = start(dsn, single(statement))
        assert wait(dsn, bad) == "failed"
        again = start(dsn, b.build(warm))  # the worker goes on with its own statements
        assert wait(dsn, again) == "completed"
    with connect(dsn) as conn:
        row = conn.execute("SELECT output FROM df.instances WHERE id = %s", (bad,)).fetchone()
        assert row is not None and "may not PREPARE or DEALLOCATE" in str(row[0])
    assert result(dsn, again) is not None


def test_a_block_sends_its_begin_with_its_first_statement(dsn: str) -> None:
    _, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        conn.chain = False  # (a commit opens no next transaction)
        with conn.transaction():
            # nothing sent yet: the server has no transaction
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            claim = store.claim(task_id=task_id)  # sent with BEGIN in front
            assert claim is not None and claim.task.id == task_id
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        with conn.transaction():
            pass  # ran nothing: sent nothing
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with conn.transaction():
            # a nested block starts inside the outer transaction, whose BEGIN goes first
            with conn.transaction():
                store.update_task_state(task_id, {"n": 1})
                raise psycopg.Rollback()
            store.update_task_state(task_id, {"n": 2})
    with connect(dsn) as conn:
        row = conn.execute("SELECT state FROM df.tasks WHERE id = %s", (task_id,)).fetchone()
        assert row is not None and row[0] == {"n": 2}


def test_a_block_that_found_nothing_is_committed_with_the_next_statement(dsn: str) -> None:
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        conn.chain = False
        with conn.transaction():
            assert store.claim(task_id=-1) is None
            conn.end_idle()
        # left open, holding nothing; the next statement outside a block commits it first
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        conn.execute("VACUUM df.tasks")  # refuses to run inside a transaction block
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with conn.transaction():
            conn.end_idle()  # nothing was sent: nothing is left open
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_block_that_wrote_is_committed_even_when_it_claims_nothing(dsn: str) -> None:
    _, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        with conn.transaction():
            store.update_task_state(task_id, {"n": 1})
            conn.end_idle()  # a held write: not idle
        with connect(dsn) as other:
            row = other.execute("SELECT state FROM df.tasks WHERE id = %s", (task_id,)).fetchone()
            assert row is not None and row[0] == {"n": 1}


def test_compound_tasks_get_reserved_ids_and_held_inserts(dsn: str) -> None:
    iid, _ = _instance(dsn)
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        with conn.transaction():
            parent = store.insert_task(instance_id=iid, node_id="n0", parent_id=None, branch=0,
                                       status="waiting", scope={}, state={"acc": {}})
            assert parent is not None and conn._held  # held, with its id known
            child = store.insert_task(instance_id=iid, node_id="n0", parent_id=parent, branch=1,
                                      status="waiting", scope={}, state={})
            row = conn.execute("SELECT parent_id FROM df.tasks WHERE id = %s", (child,)).fetchone()
            assert row == (parent,)


def test_held_writes_that_fail_in_front_of_a_chained_step_fail_it(dsn: str) -> None:
    # they travel in the step's message, in front of its savepoint: the error is theirs
    _, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        with pytest.raises(psycopg.errors.RaiseException, match="unknown bookkeeping"), \
                conn.transaction():
            conn.hold(["no such operation"])
            store.run_step(task_id, 10, "SELECT 1", True, "public", savepoint=True)


def test_a_task_inserted_after_a_delete_takes_over_its_row(dsn: str) -> None:
    iid, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        with conn.transaction():
            store.delete_task(task_id)
            new = store.insert_task(instance_id=iid, node_id="n0", parent_id=None, branch=3,
                                    status="ready", scope={"r": TRICKY}, state={"s": 1},
                                    want_id=False, next_step=True)
            assert new is not None and new != task_id
            assert [op[0] for op in conn._held] == ["move"]  # one write, in the delete's place
        assert task_id in conn.deleted
    with connect(dsn) as conn:
        rows = conn.execute("SELECT id, instance_id, node_id, parent_id, branch, status, scope, "
                            "state, created_at >= now() - interval '1 minute' FROM df.tasks "
                            "WHERE instance_id = %s", (iid,)).fetchall()
        assert rows == [(new, iid, "n0", None, 3, "ready", {"r": TRICKY}, {"s": 1}, True)]


def test_a_state_written_right_after_its_task_goes_into_the_held_insert(dsn: str) -> None:
    iid, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        store = Store(conn)
        with conn.transaction():
            store.delete_task(task_id)
            parent = store.insert_task(instance_id=iid, node_id="n0", parent_id=None, branch=0,
                                       status="waiting", scope={}, state={"acc": {}})
            assert parent is not None
            store.insert_task(instance_id=iid, node_id="n0", parent_id=parent, branch=0,
                              status="ready", scope={}, state={}, want_id=False)
            store.update_task_state(parent, {"acc": {"a": 1}})  # the child's insert names it
            assert [op[0] for op in conn._held] == ["move", "insert"]  # as a compound starts
            other = store.insert_task(instance_id=iid, node_id="n0", parent_id=None, branch=1,
                                      status="waiting", scope={}, state={"acc": {}})
            assert other is not None
            store.delete_task(other)
            store.update_task_state(other, {"acc": {"b": 2}})  # deleted since: kept as written
            assert [op[0] for op in conn._held] == ["move", "insert", "insert", "delete", "state"]
    with connect(dsn) as conn:
        rows = conn.execute("SELECT id, state FROM df.tasks WHERE instance_id = %s"
                            " AND parent_id IS NULL", (iid,)).fetchall()
        assert rows == [(parent, {"acc": {"a": 1}})]


def test_a_move_whose_row_is_gone_inserts(dsn: str) -> None:
    iid, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        Store(conn).delete_task(task_id)  # at once: outside a block
        with conn.transaction():
            conn.hold(["delete", task_id])
            new = Store(conn).insert_task(instance_id=iid, node_id="n0", parent_id=None,
                                          branch=0, status="waiting", scope={}, state={})
    with connect(dsn) as conn:
        rows = conn.execute("SELECT id, status FROM df.tasks WHERE instance_id = %s",
                            (iid,)).fetchall()
        assert rows == [(new, "waiting")]


def test_the_worker_counts_its_prepared_statements(dsn: str) -> None:
    # df._run_step_task's guard compares the count after the step with the worker's
    b = PlanBuilder()
    warm = b.build(b.seq(*[b.sql("SELECT 1") for _ in range(6)]))
    _, task_id = _instance(dsn)
    with _worker_conn(dsn) as conn:
        conn.chain = False  # (statements are prepared between transactions)
        assert conn.prepared_count is None  # psycopg prepares statements too: not known
        conn.prepare_threshold = None  # now it prepares none: the worker's count is exact
        store = Store(conn)
        role = conn.execute("SELECT oid FROM pg_roles WHERE rolname = current_user").fetchone()
        assert role is not None
        for n in range(3):
            with conn.transaction():
                store.update_task_state(task_id, {"n": n})
                run = store.run_step(task_id, role[0], "SELECT 1 AS one", True, "public")
                assert run.got and run.error is None
            count = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
            assert count == (conn.prepared_count,)
        assert conn.prepared_count  # prepared after the first transaction
        # a refused step prepared one of its own, which the rollback does not undo: the
        # session's statements go before the next block, and the count starts again
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            store.run_step(task_id, role[0], "PREPARE mine AS SELECT 1", False, "public")
        assert conn.prepared_count is None
        with conn.transaction():
            run = store.run_step(task_id, role[0], "SELECT 2 AS two", True, "public")
            assert run.rows == [{"two": 2}]
        names = [r[0] for r in conn.execute("SELECT name FROM pg_prepared_statements")]
        assert "mine" not in names and len(names) == conn.prepared_count
    with running_worker(dsn, concurrency=1):
        assert wait(dsn, start(dsn, warm)) == "completed"


def test_a_step_called_without_the_count_counts_itself(dsn: str) -> None:
    # the signature of workers before migration 0021
    _, task_id = _instance(dsn)
    with connect(dsn) as conn:
        role = conn.execute("SELECT oid FROM pg_roles WHERE rolname = current_user").fetchone()
        assert role is not None
        with conn.transaction():
            row = conn.execute(
                "SELECT got, result_rows FROM df._run_step_task(%s, false, now(), %s::regrole, "
                "'SELECT 3 AS three', true, 'public', NULL)", (task_id, role[0])).fetchone()
            assert row == (True, [{"three": 3}])
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute(
                "SELECT got FROM df._run_step_task(%s, false, now(), %s::regrole, "
                "'PREPARE mine AS SELECT 1', false, 'public', NULL)", (task_id, role[0]))


def test_an_announcement_wakes_an_executor_unless_a_claim_has_looked_for_its_work() -> None:
    worker = Worker("dbname=unused")  # (not started: no connection)
    # heard before a claim that found nothing: that claim looked for its work already
    worker._announce()
    mark = worker._announced
    worker._sleep(worker._generation, mark, 0.05)  # sleeps its time out
    assert (worker._announced, worker._covered) == (1, 1)
    # heard after the claim started: the executor looks again instead of sleeping
    mark = worker._announced
    worker._announce()
    worker._sleep(worker._generation, mark, 60.0)
    assert (worker._announced, worker._covered) == (2, 2)
    # two announcements: two executors look, one each
    mark = worker._announced
    worker._announce()
    worker._announce()
    worker._sleep(worker._generation, mark, 60.0)
    worker._sleep(worker._generation, mark, 60.0)
    assert (worker._announced, worker._covered) == (4, 4)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.decimals(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@given(_json_values)
@settings(max_examples=300, deadline=None)
def test_the_fast_json_text_is_the_exact_one(value: Any) -> None:
    """The worker's JSON text (one shared C encoder) is runtime.jsonvalues' text, or the same
    refusal: Decimal digits and non-finite floats go the exact way."""
    try:
        expected: str | type[Exception] = dumps(value)
    except (TypeError, ValueError) as exc:
        expected = type(exc)
    try:
        got: str | type[Exception] = fast_dumps(value)
    except (TypeError, ValueError) as exc:
        got = type(exc)
    assert got == expected

