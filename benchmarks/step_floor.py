"""The floor of a durable step: pgbench running only the work a step must do under dfc's contract.

A step of a dfc chain commits, in one transaction: the move of its task row on to the next node
(the row's lock is the lease), the user's statement, the finished node's result and the next
node's start. ``runtime_bench.py --floor`` has pgbench run exactly that, with no worker, no
PL/pgSQL orchestration and no guards, on copies of ``df.tasks`` and ``df.nodes``; the rate it
reaches next to the reference transaction (``PGBENCH_SCRIPT``) on the same server is the best
ratio a step can reach, so the rest of the gap between dfc's steps/s and the reference is dfc's
own overhead. The last script adds the checks that keep what a step did from reaching the
worker or the next role's step (dfc makes them inside one PL/pgSQL function, where their plans
are cached; here each is a statement of its own, parsed and planned every time, so this one
overstates them).

The last two scripts run a whole instance, its start and all its steps, one committed
transaction each, still with no worker: what the issue's targets measure (steps/s of whole
10-step instances), minus everything a worker does.

Each script sends its transaction as one message (``\\;`` compound statements), as the worker
sends a chain's step; the reference is run as the issue defines it, statement by statement.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

# Instances and nodes per instance in the copies; pgbench's client k works on instance k.
INSTANCES = 32
NODES = 10

ROLE = "floor_stepper"
SCHEMA = "floor_exec"


@dataclass(frozen=True)
class Script:
    """A pgbench script and what its transaction does, in one line; ``steps``: the workflow
    steps one run of it stands for (its ratio is steps/s to the reference's transactions/s)."""

    name: str
    does: str
    text: str
    steps: int = 1


def setup(conn: psycopg.Connection[Any], plan: str) -> None:
    """Create the copies of ``df.tasks`` and ``df.nodes`` (one ready task per instance, keyed by
    pgbench's ``:client_id``; its nodes pending), the table the user's statement writes, and a
    non-superuser role owning a step runner with the body of dfc's canonical runner; and, for the
    last script, instances of ``plan`` (a sequence of at least ``NODES`` SQL steps), each with the
    task of its first step ready, as a worker leaves them. Needs the df schema installed and a
    superuser ``conn`` in autocommit."""
    conn.execute("CREATE TABLE floor_log (k text, n int)")
    conn.execute("CREATE TABLE floor_tasks (LIKE df.tasks INCLUDING ALL)")
    conn.execute("CREATE TABLE floor_nodes (LIKE df.nodes INCLUDING ALL)")
    conn.execute("CREATE TABLE floor_instance_rows (LIKE df.instances INCLUDING ALL)")
    conn.execute("CREATE SEQUENCE floor_instance_ids")
    conn.execute("CREATE SEQUENCE floor_task_ids")
    conn.execute(
        "INSERT INTO floor_tasks (id, instance_id, node_id, branch, status)"
        " SELECT nextval('floor_task_ids'), g::text, 'n0', 0, 'ready'"
        " FROM generate_series(0, %s) g", (INSTANCES - 1,))
    conn.execute(
        "INSERT INTO floor_nodes (instance_id, id, node_type, submitted_by)"
        " SELECT g::text, 'n' || s, 'sql', 'postgres'"
        " FROM generate_series(0, %s) g, generate_series(0, %s) s", (INSTANCES - 1, NODES - 1))
    conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(ROLE)))
    conn.execute(sql.SQL("GRANT INSERT ON floor_log TO {}").format(sql.Identifier(ROLE)))
    conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
        sql.Identifier(SCHEMA), sql.Identifier(ROLE)))
    row = conn.execute("SELECT df._runner_body()").fetchone()
    assert row is not None
    # created by the role itself, so that it owns the SECURITY DEFINER function as a step
    # runner's role does
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(ROLE)))
    try:
        conn.execute(sql.SQL(
            "CREATE FUNCTION {}.run(p_sql text, p_returns_rows boolean, p_search_path text)"
            " RETURNS SETOF json LANGUAGE plpgsql SECURITY DEFINER AS {}").format(
                sql.Identifier(SCHEMA), sql.Literal(row[0])))
    finally:
        conn.execute("RESET ROLE")
    _setup_dfc_steps(conn, plan)
    conn.execute("SELECT df.install_plan(%s::jsonb)", (plan,))
    conn.execute("ANALYZE floor_tasks, floor_nodes, floor_log, df.tasks, df.nodes, df.instances")


def _setup_dfc_steps(conn: psycopg.Connection[Any], plan: str) -> None:
    """Instances of ``plan`` for dfc's own step function: client k runs the steps of instance k
    (``floor_instances``), going round its first ``NODES - 1`` steps; ``floor_dfc_step`` finds
    the instance's ready task and runs its step with df._run_chained_step_moving, as the worker
    sends a chained step (the look-up is the only addition)."""
    conn.execute("CREATE TABLE floor_instances (k int PRIMARY KEY, id text NOT NULL)")
    for k in range(INSTANCES):
        row = conn.execute("SELECT df.start(%s)", (plan,)).fetchone()
        assert row is not None
        # what a worker does with a new instance: its sequence's task waits for its first step
        conn.execute("UPDATE df.tasks SET status = 'waiting' WHERE instance_id = %s", (row[0],))
        conn.execute(
            "INSERT INTO df.tasks (instance_id, node_id, parent_id, branch, status)"
            " SELECT t.instance_id, 'n0', t.id, 0, 'ready' FROM df.tasks t"
            " WHERE t.instance_id = %s", (row[0],))
        conn.execute("INSERT INTO floor_instances VALUES (%s, %s)", (k, row[0]))
    conn.execute(sql.SQL("""
        CREATE FUNCTION floor_dfc_step(p_instance text) RETURNS void LANGUAGE plpgsql AS $$
        DECLARE
            t record;
            v_next integer;
        BEGIN
            SELECT d.id, d.branch, d.parent_id INTO t FROM df.tasks d
             WHERE d.instance_id = p_instance AND d.status = 'ready';
            v_next := (t.branch + 1) % {steps};
            PERFORM df._run_chained_step_moving(
                t.id, p_instance, 'n' || t.branch, 'infinity', current_user::regrole,
                'INSERT INTO floor_log (k, n) VALUES (''x'', 1)', false, 'public', t.parent_id,
                NULL, nextval(pg_get_serial_sequence('df.tasks', 'id')), 'n' || v_next, v_next,
                NULL, '{{}}', '{{"activated": true}}');
        END $$""").format(steps=sql.Literal(NODES - 1)))


def _compound(*statements: str) -> str:
    """A pgbench script of one transaction, node ``n:s`` finishing and ``n:s+1`` next, sent
    to the server as one message."""
    return f"\\set s random(0, {NODES - 2})\n" + _transaction(*statements)


def _transaction(*statements: str, end: str = ";") -> str:
    """One transaction of a pgbench script, sent as one message; ``end`` ``\\aset`` keeps
    the columns its statements return as variables."""
    return " \\;\n".join(("BEGIN", *statements, "END")) + end + "\n"


_MOVE_TASK = (
    "UPDATE floor_tasks SET id = nextval('floor_task_ids'), node_id = 'n' || (:s + 1),"
    " branch = :s + 1, run_at = clock_timestamp(), state = '{}', created_at = clock_timestamp()"
    " WHERE instance_id = :client_id::text AND status = 'ready'"
)
_USER_PLAIN = "INSERT INTO floor_log (k, n) VALUES ('x', :s)"
_USER_RUNNER = (
    "SELECT coalesce(json_agg(r), '[]') FROM " + SCHEMA + ".run("
    "'INSERT INTO floor_log (k, n) VALUES (''x'', ' || :s || ')', false, 'public') r"
)
_NODE_COMPLETED = (
    "UPDATE floor_nodes SET status = 'completed', result = '{\"rows\": [], \"row_count\": 0}',"
    " updated_at = clock_timestamp() WHERE instance_id = :client_id::text AND id = 'n' || :s"
)
_NODE_RUNNING = (
    "UPDATE floor_nodes SET status = 'running', result = NULL, runs = runs + 1, attempts = 1,"
    " last_error = NULL, started_at = clock_timestamp(), updated_at = clock_timestamp()"
    " WHERE instance_id = :client_id::text AND id = 'n' || (:s + 1)"
)

# What dfc checks around every step so that nothing the step did reaches the worker or the next
# role's step (df._run_chained_step_moving): the runner's identity and the prepared statements
# before it; after it the worker's search_path, the prepared-statement guard, the dblink look-up
# and the advisory-lock release, RESET ALL, DISCARD TEMP, and the parent still there.
_GUARD_BEFORE = (
    "SELECT EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = '" + SCHEMA + "'::regnamespace"
    " AND p.proname = 'run' AND p.proowner = '" + ROLE + "'::regrole AND p.prosecdef),"
    " (SELECT count(*) FROM pg_prepared_statements)"
)
_GUARDS_AFTER = (
    "SELECT set_config('search_path', 'pg_catalog, pg_temp', true)",
    "SELECT count(*) <> 0 OR coalesce(bool_or(s.prepare_time >= statement_timestamp()), false),"
    " EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'dblink'),"
    " pg_advisory_unlock_all() IS NULL FROM pg_prepared_statements s",
    "RESET ALL",
    "DISCARD TEMP",
    "SELECT EXISTS (SELECT 1 FROM public.floor_tasks t WHERE t.id = 1)",
)


# A whole instance of NODES steps as the contract has it, with no worker: the start (the
# instance's row, the task of its first step, the workers' wake-up) committed by the caller, each
# step as task+nodes+runner, and the last step finishing the instance instead of moving its task.
# Client k's instances keep their task under the instance id "ik", apart from the task that the
# one-step scripts move.
_MOVE_INSTANCE_TASK = _MOVE_TASK.replace("instance_id = :client_id::text",
                                         "instance_id = 'i' || :client_id")
_START_BARE = (
    "INSERT INTO floor_instance_rows (id, plan_id, root_node, submitted_by, database, vars)"
    " VALUES (lpad(to_hex(nextval('floor_instance_ids')), 8, '0'), 1, 'n0', 'postgres',"
    " current_database(), '{}') RETURNING id AS inst",
    "INSERT INTO floor_tasks (id, instance_id, node_id, branch, status)"
    " VALUES (nextval('floor_task_ids'), 'i' || :client_id, 'n0', 0, 'ready')",
    "SELECT pg_notify('floor_work', :client_id::text) AS woken",
)
_FINISH = (
    "DELETE FROM floor_tasks WHERE instance_id = 'i' || :client_id AND status = 'ready'",
    "UPDATE floor_instance_rows SET status = 'completed', output = '[]',"
    " completed_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id = ':inst'",
)
# df.start's instance, finished as the bare one, its own task (the activation) deleted
_START_DFC = ("SELECT df.start('bench') AS inst", *_START_BARE[1:])
_FINISH_DFC = (
    _FINISH[0], "DELETE FROM df.tasks WHERE instance_id = ':inst'",
    _FINISH[1].replace("floor_instance_rows", "df.instances"),
)


def _instance(start: tuple[str, ...], finish: tuple[str, ...]) -> str:
    """A pgbench script of a whole instance: ``start`` (which returns the instance's id as
    ``inst``), then NODES steps, one transaction each, the last one with ``finish``."""
    steps = []
    for s in range(NODES):
        writes = [w.replace(":s", str(s)) for w in (_USER_RUNNER, _NODE_COMPLETED)]
        if s < NODES - 1:
            steps.append(_transaction(_MOVE_INSTANCE_TASK.replace(":s", str(s)), *writes,
                                      _NODE_RUNNING.replace(":s", str(s))))
        else:
            steps.append(_transaction(*writes, *finish))
    return _transaction(*start, end=" \\aset") + "".join(steps)


def scripts(reference: str) -> tuple[Script, ...]:
    """The reference transaction and the step's minimal work, in the order they are run."""
    return (
        Script("reference", "INSERT + UPDATE + INSERT, statement by statement (the issue's "
               "reference)", reference),
        Script("task+nodes", "move the task on (new id, next node), the INSERT, the node "
               "completed, the next node running", _compound(
                   _MOVE_TASK, _USER_PLAIN, _NODE_COMPLETED, _NODE_RUNNING)),
        Script("task+nodes+runner", "as task+nodes, the INSERT through a SECURITY DEFINER "
               "step runner", _compound(
                   _MOVE_TASK, _USER_RUNNER, _NODE_COMPLETED, _NODE_RUNNING)),
        Script("task+node+runner", "as task+nodes+runner without the next node's start "
               "(recorded with its completion)", _compound(
                   _MOVE_TASK, _USER_RUNNER, _NODE_COMPLETED)),
        Script("task+nodes+runner+guards", "as task+nodes+runner with dfc's checks around the "
               "step (runner, prepared statements, RESET ALL, DISCARD TEMP, …) as statements",
               _compound(_MOVE_TASK, _GUARD_BEFORE, _USER_RUNNER, *_GUARDS_AFTER,
                         _NODE_COMPLETED, _NODE_RUNNING)),
        Script("dfc step function", "dfc's own chained step (df._run_chained_step_moving) on "
               "df's tables, driven by pgbench instead of the worker", _compound(
                   "SELECT floor_dfc_step((SELECT f.id FROM floor_instances f"
                   " WHERE f.k = :client_id))")),
        Script("instance", f"a whole {NODES}-step instance: a start (the instance's row, its "
               "first task, pg_notify) and its steps as task+nodes+runner, the last one "
               "finishing it, each committed, no worker", _instance(_START_BARE, _FINISH), NODES),
        Script("instance, df.start", "as instance, started by dfc's df.start (an installed "
               "plan: its node rows, its checks) besides the bare start's task",
               _instance(_START_DFC, _FINISH_DFC), NODES),
    )


def measure(reference: str, run: Callable[[str, int], float], rounds: int,
            seconds: int, clients: Sequence[int] = (1, 16)) -> None:
    """Print each script's tps (``run(script, clients)``) and its ratio to the reference's,
    per round and client count, the scripts interleaved in the same order every round; then
    the median ratio of each script over the rounds."""
    assert max(clients) <= INSTANCES, f"at most {INSTANCES} clients"
    measured = scripts(reference)
    width = max(len(s.name) for s in measured)
    print(f"pgbench, {seconds} s per run; all but the reference send a transaction as one"
          " message (\\; compound statements):")
    for script in measured:
        print(f"  {script.name:<{width}}  {script.does}")
    ratios: dict[int, dict[str, list[float]]] = {n: {s.name: [] for s in measured[1:]}
                                                 for n in clients}
    for round_ in range(1, rounds + 1):
        for n in clients:
            tps = {s.name: run(s.text, n) for s in measured}
            base = tps[measured[0].name]
            parts = [f"{measured[0].name} {base:6.0f} tps"]
            for script in measured[1:]:
                ratio = script.steps * tps[script.name] / base
                ratios[n][script.name].append(ratio)
                parts.append(f"{script.name} {tps[script.name]:6.0f} tps ({ratio:.2f})")
            print(f"round {round_}, {n:2d} client(s): " + "; ".join(parts), flush=True)
    for n in clients:
        print(f"median ratio to the reference over {rounds} round(s), {n:2d} client(s): "
              + ", ".join(f"{name} {statistics.median(values):.2f}"
                          for name, values in ratios[n].items()))
