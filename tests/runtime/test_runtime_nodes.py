"""Every node kind, run by a real worker against a real database."""

from __future__ import annotations

from helpers import eventually, output, result, run, running_worker, start, wait
from plans import PlanBuilder
from rich.console import Console

from runtime import api
from runtime.connection import connect
from runtime.progress import render


def test_seq_runs_in_order(dsn: str) -> None:
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE log (n int, at timestamptz DEFAULT clock_timestamp())")
    b = PlanBuilder()
    root = b.seq(*[b.sql(f"INSERT INTO log (n) VALUES ({i})") for i in range(5)],
                 b.sql("SELECT array_agg(n ORDER BY at)::text AS ns FROM log"))
    _, status, res = run(dsn, b.build(root))
    assert status == "completed"
    assert res["rows"][0]["ns"] == "{0,1,2,3,4}"


def test_join_returns_results_in_branch_order_and_merges_names(dsn: str) -> None:
    b = PlanBuilder()
    root = b.seq(
        b.join(b.sql("SELECT 1 AS a", bind="x"), b.sql("SELECT 2 AS b", bind="y"), bind="both"),
        b.sql("SELECT $x + $y AS total, $both AS raw"),
    )
    _, status, res = run(dsn, b.build(root))
    assert status == "completed"
    assert res["rows"][0]["total"] == 3


def test_join_result_is_array(dsn: str) -> None:
    b = PlanBuilder()
    _, status, res = run(dsn, b.build(b.join(b.sql("SELECT 1 AS a"), b.sql("SELECT 2 AS a"))))
    assert status == "completed"
    assert res == [{"rows": [{"a": 1}], "row_count": 1}, {"rows": [{"a": 2}], "row_count": 1}]


def test_join_fails_fast(dsn: str) -> None:
    b = PlanBuilder()
    root = b.join(b.sql("SELECT 1/0"), b.seq(b.sleep(3600), b.sql("SELECT 1")))
    iid, status, _ = run(dsn, b.build(root))
    assert status == "failed"
    assert "JOIN branch 1 failed" in (output(dsn, iid) or "")
    assert "division by zero" in (output(dsn, iid) or "")


def test_race_first_to_finish_wins(dsn: str) -> None:
    b = PlanBuilder()
    root = b.race(b.seq(b.sleep(3600), b.sql("SELECT 'slow' AS w")), b.sql("SELECT 'fast' AS w"))
    iid, status, res = run(dsn, b.build(root))
    assert status == "completed"
    assert res["rows"][0]["w"] == "fast"
    with connect(dsn) as conn:
        left = conn.execute("SELECT count(*) FROM df.tasks WHERE instance_id = %s", (iid,)).fetchone()
    assert left == (0,)


def test_if_takes_the_right_branch(dsn: str) -> None:
    for condition, expected in (("SELECT true", "yes"), ("SELECT 0", "no"), ("SELECT 'off'", "yes"),
                                ("SELECT 1 WHERE false", "no")):
        b = PlanBuilder()
        root = b.if_(b.sql(condition), b.sql("SELECT 'yes' AS r"), b.sql("SELECT 'no' AS r"))
        _, status, res = run(dsn, b.build(root))
        assert status == "completed"
        assert res["rows"][0]["r"] == expected, condition


def test_if_without_else_does_nothing(dsn: str) -> None:
    b = PlanBuilder()
    _, status, res = run(dsn, b.build(b.if_(b.sql("SELECT false"), b.sql("SELECT 1"))))
    assert status == "completed"
    assert res is None


def test_if_rows(dsn: str) -> None:
    b = PlanBuilder()
    root = b.seq(b.sql("SELECT 1 AS x WHERE false", bind="doc"),
                 b.if_rows("doc", b.sql("SELECT 'some' AS r"), b.sql("SELECT 'none' AS r")))
    _, status, res = run(dsn, b.build(root))
    assert (status, res["rows"][0]["r"]) == ("completed", "none")


def test_while_loop_and_names_survive_iterations(dsn: str) -> None:
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE counter (n int); INSERT INTO counter VALUES (0)")
    b = PlanBuilder()
    body = b.sql("UPDATE counter SET n = n + 1 RETURNING n", bind="c")
    root = b.seq(b.loop(body, b.sql("SELECT $c < 5")), b.sql("SELECT $c AS last"))
    _, status, res = run(dsn, b.build(root))
    assert status == "completed"
    assert res["rows"][0]["last"] == 5


def test_forever_loop_with_break_value(dsn: str) -> None:
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE counter (n int); INSERT INTO counter VALUES (0)")
    b = PlanBuilder()
    body = b.seq(b.sql("UPDATE counter SET n = n + 1 RETURNING n", bind="c"),
                 b.if_(b.sql("SELECT $c >= 3"), b.break_('{"stopped_at": $c}')))
    _, status, res = run(dsn, b.build(b.loop(body, bind="out")))
    assert status == "completed"
    assert res == {"stopped_at": 3}


def test_break_in_join_branch_leaves_loop(dsn: str) -> None:
    b = PlanBuilder()
    body = b.join(b.sql("SELECT 1"), b.break_("done"))
    _, status, res = run(dsn, b.build(b.loop(body)))
    assert (status, res) == ("completed", "done")


def test_break_outside_loop_fails(dsn: str) -> None:
    b = PlanBuilder()
    iid, status, _ = run(dsn, b.build(b.seq(b.sql("SELECT 1"), b.break_("x"))))
    assert status == "failed"
    assert "outside of a loop" in (output(dsn, iid) or "")


def test_durable_sleep(dsn: str) -> None:
    b = PlanBuilder()
    _, status, res = run(dsn, b.build(b.seq(b.sleep(1), b.sql("SELECT 'after' AS r"))))
    assert (status, res["rows"][0]["r"]) == ("completed", "after")


def test_sleep_result(dsn: str) -> None:
    b = PlanBuilder()
    _, status, res = run(dsn, b.build(b.sleep(0)))
    assert (status, res) == ("completed", {"slept": True, "seconds": 0})


def test_failed_step_fails_instance_and_skips_rest(dsn: str) -> None:
    b = PlanBuilder()
    iid, status, res = run(dsn, b.build(b.seq(b.sql("SELECT 1/0"), b.sql("SELECT 2"))))
    assert (status, res) == ("failed", None)
    assert output(dsn, iid) == "SQL execution failed: division by zero"
    with connect(dsn) as conn:
        rows = conn.execute("SELECT node_id, inferred_status FROM df.instance_nodes(%s)",
                            (iid,)).fetchall()
    assert dict(rows) == {"n0": "failed", "n1": "skipped", "n2": "failed"}


def test_inferred_status_follows_loop_iterations(dsn: str) -> None:
    # a node keeps one row across iterations: what an earlier iteration left reads pending (from
    # the loop) until this iteration gets there, or skipped where this iteration decided otherwise
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE counter (n int); INSERT INTO counter VALUES (0)")
    b = PlanBuilder()
    count = b.sql("UPDATE counter SET n = n + 1 RETURNING n", bind="c")
    condition = b.sql("SELECT $c = 1")
    first, later = b.sql("SELECT 'first' AS branch"), b.sql("SELECT 'later' AS branch")
    choose = b.if_(condition, first, later)
    gate = b.wait_signal("go")
    after = b.sql("SELECT $c AS done")
    body = b.seq(count, choose, gate, after)
    again = b.sql("SELECT $c < 2")
    loop = b.loop(body, again)

    def nodes(iid: str) -> dict[str, tuple[str, str | None, str | None]]:
        with connect(dsn) as conn:
            return {node: (stored, inferred, ancestor) for node, stored, inferred, ancestor in conn.execute(
                "SELECT node_id, status, inferred_status, inferred_status_from_ancestor_id"
                " FROM df.instance_nodes(%s)", (iid,))}

    with running_worker(dsn):
        iid = start(dsn, b.build(loop))
        eventually(lambda: nodes(iid)[gate][0] == "running")
        first_iteration = nodes(iid)
        with connect(dsn) as conn:
            conn.execute("SELECT df.signal(%s, 'go')", (iid,))
        eventually(lambda: nodes(iid)[later][0] == "completed" and nodes(iid)[gate][0] == "running")
        second_iteration = nodes(iid)
        with connect(dsn) as conn:
            states = api.progress(conn, iid)
        console = Console(width=200, record=True)
        console.print(render(b.build(loop), iid, "running", states))
        tree = console.export_text()
        with connect(dsn) as conn:
            conn.execute("SELECT df.signal(%s, 'go')", (iid,))
        assert wait(dsn, iid) == "completed"
    ended = nodes(iid)

    def inferred(view: dict[str, tuple[str, str | None, str | None]]) -> dict[str, tuple[str | None, str | None]]:
        return {node: (status, ancestor) for node, (_, status, ancestor) in view.items()}

    assert inferred(first_iteration) == {
        count: ("completed", None), condition: ("completed", None), first: ("completed", None),
        later: ("skipped", choose), choose: ("completed", None), gate: ("running", None),
        after: ("pending", None), body: ("running", None), again: ("pending", None),
        loop: ("running", None)}
    # the second iteration went the other way and has not reached the last step yet
    assert inferred(second_iteration) == {
        count: ("completed", None), condition: ("completed", None), first: ("skipped", choose),
        later: ("completed", None), choose: ("completed", None), gate: ("running", None),
        after: ("pending", loop), body: ("running", None), again: ("pending", loop),
        loop: ("running", None)}
    assert second_iteration[after][0] == "completed"  # stored: as the first iteration left it
    # dfc run's tree: this iteration's steps with their times, the last step pending, no time
    lines = [line.rstrip() for line in tree.splitlines()]
    assert any(line.endswith("○ SQL SELECT $c AS done") for line in lines), tree
    assert any(line.endswith("○ SQL SELECT $c < 2") for line in lines), tree
    assert any("✓ SQL SELECT 'later' AS branch  0." in line for line in lines), tree
    assert inferred(ended) == {
        count: ("completed", None), condition: ("completed", None), first: ("skipped", choose),
        later: ("completed", None), choose: ("completed", None), gate: ("completed", None),
        after: ("completed", None), body: ("completed", None), again: ("completed", None),
        loop: ("completed", None)}


def test_signal_is_buffered(dsn: str) -> None:
    b = PlanBuilder()
    root = b.seq(b.sql("SELECT 1"), b.wait_signal("go", bind="sig"), b.sql("SELECT ($sig.data)::jsonb AS d"))
    iid = start(dsn, b.build(root))
    with connect(dsn) as conn:
        conn.execute("SELECT df.signal(%s, 'go', '{\"k\": 1}')", (iid,))
    with running_worker(dsn):
        assert wait(dsn, iid) == "completed"
    assert result(dsn, iid)["rows"][0]["d"] == {"k": 1}


def test_signal_timeout(dsn: str) -> None:
    b = PlanBuilder()
    with running_worker(dsn):
        iid = start(dsn, b.build(b.wait_signal("never", timeout=1)))
        assert wait(dsn, iid) == "completed"
    assert result(dsn, iid) == {"signal_name": "never", "timed_out": True, "data": None}


def test_plain_sql_string_is_a_workflow(dsn: str) -> None:
    _, status, res = run(dsn, "SELECT 42 AS answer")
    assert (status, res) == ("completed", {"rows": [{"answer": 42}], "row_count": 1})
