"""Chains: consecutive SQL steps of a sequence sent to the server in one message.

After a SQL step, the worker usually goes on with the next step of the same instance without
claiming it (``Worker._go_on``): the message that commits one step runs the next. Where a
sequence holds a run of SQL steps whose bookkeeping cannot depend on what they return, the
worker sends the whole run in that message, one transaction per step, instead of one step per
round trip. Such a step has no result name (its result goes nowhere but into its node's record)
and neither it nor the step after it refers to any result (so the next step's activation
carries no results). Its bookkeeping on success is then known before it runs: its task moves on
to the next step, its node is recorded completed with its result, the next node started.

The worker's own engine makes those writes, for the step's success (:func:`plan_chain`), and
the step's ``df._run_chained_step`` call applies them after the step, in its transaction, with
the node's record and its result. So each step still commits with its bookkeeping, exactly
once. Whatever else happens (the step fails, its task or the sequence was taken or cancelled)
raises, and the message stops there, with the steps before committed: the worker finds where
from the one task of the chain that still exists (``WorkerConnection._chain_stopped``) and goes
on from there as after any step.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.connection import WorkerConnection
from runtime.engine import Context, Outcome
from runtime.executors import SqlExecutor
from runtime.plans import Node
from runtime.store import Task
from runtime.substitution import referenced_names, substitute_vars

# Steps of one chain at most, the last step (run as a step gone on with) not counted.
MAX_CHAIN = 32
# How long the tasks a chain creates are held back from other workers (Context.lease): the
# chain takes each right after the step before commits, and a claim in between would take the
# rest of the chain over. Short, because a claim that read a task's row before the step before
# moved it on keeps it locked for its own transaction (PostgreSQL keeps the lock of a row that
# fails a FOR UPDATE recheck): the chain then stops there, and the task waits out its lease.
# After a crash, other workers run it this much later.
LEASE_SECONDS = 0.25


@dataclass(frozen=True)
class Chain:
    # per step: its run_chained_step statement, COMMIT and BEGIN
    statements: tuple[bytes, ...]
    tasks: tuple[Task, ...]  # the task each of them runs
    last: Task  # the step the message runs after them, as the step gone on with


def plan_chain(ctx: Context, executor: SqlExecutor, step: Task, limit: int) -> Chain | None:
    """The chain that starts with ``step`` (a SQL step to go on with), of at most ``limit``
    steps before its last; None where fewer than one step would chain.

    Makes each chained step's bookkeeping with the engine, so ``ctx`` ends up as if they had
    all run: its ``next_step`` is the chain's last step, and its ``lease`` is set for the
    statement of that step (the caller sets it back).
    """
    plan = ctx.plan
    parent = plan.parents.get(step.node_id)
    conn = ctx.store.conn
    if parent is None or step.parent_id is None or plan.nodes[parent].kind != "seq" \
            or not isinstance(conn, WorkerConnection):
        return None
    # a variable holding a reference would make steps that use no result want one
    if any("$" in value and referenced_names(value) for value in ctx.variables.values()):
        return None
    children = plan.nodes[parent].children
    first = step.branch
    if first >= len(children) or children[first] != step.node_id:
        return None
    end = first  # the chain's last step, run as the step gone on with
    while end + 1 < len(children) and end - first < min(limit, MAX_CHAIN):
        here, after = plan.nodes[children[end]], plan.nodes[children[end + 1]]
        if here.bind is not None or not _independent(ctx, here) or not _independent(ctx, after):
            break
        end += 1
    if end == first:
        return None
    statements: list[bytes] = []
    tasks: list[Task] = []
    task = step
    ctx.lease = LEASE_SECONDS
    for index in range(first, end):
        node = plan.nodes[children[index]]
        with conn.captured() as ops:
            # what Context.complete does for a step that succeeded: its sequence goes on with
            # the next child (no result name: the sequence's own state does not change)
            ctx.store.delete_task(task.id)
            ctx.conclude(node, Outcome.ok(None))
            ctx.ready_count, ctx.next_step = 0, None
            ctx.start_node(children[index + 1], task.parent_id, index + 1, {})
        following = ctx.next_step
        assert following is not None  # a transactional SQL step, due now, the only new task
        # the node's record, with the result, is written by the step's own statement
        finished = [op for op in ops if op[0] == "finished"]
        assert len(finished) == 1 and finished[0][3] == "completed", ops
        others = [op for op in ops if op[0] != "finished"]
        statements += (executor.chained_statement(ctx, node, task, others), b"COMMIT", b"BEGIN")
        tasks.append(task)
        task = following
    return Chain(tuple(statements), tuple(tasks), task)


def _independent(ctx: Context, node: Node) -> bool:
    """A transactional SQL step that refers to no result (after its variables are in)."""
    if node.kind != "sql" or not node.spec.get("transactional", True):
        return False
    sql = node.spec["sql"]
    return "$" not in sql or not referenced_names(substitute_vars(sql, ctx.variables))
