"""One executor per plan node kind (the table of ``docs/plan-format.md``).

Compound executors keep their progress in the task's ``state`` and the bindings their finished
children produced in ``state["acc"]``; leaf executors do their work in ``run``. HTTP steps
(:mod:`runtime.executors_http`) and the time and failure handling kinds (``wait_schedule``,
``retry``, ``timeout``, ``undo``: :mod:`runtime.executors_control`) live in their own modules.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import psycopg
import psycopg.errors

from runtime.backoff import is_transient_sql_error, is_transient_sqlstate
from runtime.engine import (
    Context,
    Deferred,
    Executor,
    Failed,
    Outcome,
    OutsideTransaction,
    Record,
    Reschedule,
    StepFailed,
)
from runtime.jsonvalues import JSON, condition_holds, loads
from runtime.plans import Node
from runtime.store import Store, Task
from runtime.substitution import (
    SubstitutionError,
    referenced_names,
    substitute_sql,
    substitute_text,
    substitute_vars,
)

# A loop whose iterations finish without any work would never give the worker back.
MAX_INLINE_ITERATIONS = 10_000
# A scope entry no ``$name`` can spell: which loop iteration (of every enclosing loop) an
# activation belongs to; HTTP steps derive their Idempotency-Key from it.
ITERATION_KEY = "#iteration"


def _iteration_scope(scope: dict[str, JSON], node: Node, iteration: int) -> dict[str, JSON]:
    outer = str(scope.get(ITERATION_KEY, ""))
    return {**scope, ITERATION_KEY: f"{outer}/{node.id}:{iteration}"}


def _scope(task: Task, acc: dict[str, JSON]) -> dict[str, JSON]:
    return {**task.scope, **acc} if acc else dict(task.scope)


def _started(ctx: Context, task: Task, outcome: Outcome | None) -> Outcome | None:
    """Finish starting a compound node: drop its task if it is already done, else save state."""
    if outcome is not None:
        ctx.drop_task(task)
    else:
        ctx.store.update_task_state(task.id, task.state)
    return outcome


class _Compound:
    leaf = False

    def run(self, ctx: Context, node: Node, task: Task) -> Outcome | Reschedule | Deferred | Failed:
        raise AssertionError(f"{node.kind} nodes are not run by workers")


class _Leaf:
    leaf = True

    def on_child(self, ctx: Context, node: Node, task: Task, branch: int,
                 outcome: Outcome) -> Outcome | None:
        raise AssertionError(f"{node.kind} nodes have no children")


# --- leaves ----------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def returns_rows(sql: str) -> bool:
    """Whether a statement returns rows (SELECT, VALUES, … RETURNING, SHOW, EXPLAIN)."""
    try:
        import pglast

        statements = pglast.parse_sql(sql)
    except Exception:
        return True  # let PostgreSQL report the syntax error
    if len(statements) != 1:
        return True
    stmt = statements[0].stmt
    kind = type(stmt).__name__
    if kind == "SelectStmt":
        return getattr(stmt, "intoClause", None) is None
    if kind in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"):
        clause = getattr(stmt, "returningClause", None)  # PostgreSQL 18 grammar
        if clause is not None:
            return bool(getattr(clause, "exprs", None) or getattr(clause, "returningList", None))
        return bool(getattr(stmt, "returningList", None))
    return kind in ("ExplainStmt", "VariableShowStmt", "FetchStmt")


class SqlExecutor(_Leaf):
    """A SQL step: its effects, its result and what comes next commit together."""

    def __init__(self) -> None:
        self._kinds: dict[tuple[Any, ...], bool] = {}

    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        wanted = referenced_names(node.spec["sql"])
        for value in ctx.variables.values():
            wanted |= referenced_names(value)
        ctx.ready_task(node, parent_id, branch, {k: v for k, v in scope.items() if k in wanted})
        return None

    def run(self, ctx: Context, node: Node, task: Task) -> Outcome | Reschedule | Deferred | Failed:
        store = ctx.store
        try:
            sql = substitute_sql(substitute_vars(node.spec["sql"], ctx.variables), task.scope)
        except SubstitutionError as exc:
            return Outcome.error(str(exc))
        if not node.spec.get("transactional", True):
            return self._outside(ctx, task, sql)
        rows_wanted = self._returns_rows(ctx, node, sql)
        try:
            # the parent is locked next anyway (when the outcome goes up): in the same statement
            run = store.run_step(task.id, ctx.instance.role_oid, sql, rows_wanted,
                                 ctx.instance.search_path, then_lock=task.parent_id,
                                 savepoint=ctx.step_savepoint)
        except psycopg.errors.InvalidSqlStatementName:
            # one of the worker's own prepared statements is missing (the step's statements run
            # inside df._run_step_task, whose errors come back as the step's): the session's
            # fault, not the step's (see Worker._retry_on_new_session)
            raise
        except psycopg.errors.QueryCanceled as exc:
            # statement_timeout, or cancelled on purpose (df.cancel, a timeout, a lost race)
            if store.conn.broken:
                raise
            message = (exc.diag.message_primary if exc.diag else None) or str(exc)
            # interrupted from outside (df.cancel commits right after: the retry finds the
            # instance cancelled); a statement_timeout is final
            raise StepFailed(task.id, f"SQL execution failed: {message}",
                             retryable="user request" in message) from exc
        except psycopg.Error as exc:
            if store.conn.broken:
                raise  # the connection is gone: the worker reconnects, the step runs again
            message = (exc.diag.message_primary if exc.diag else None) or str(exc)
            # the step's transaction is aborted: the worker records the failure in a new one
            raise StepFailed(task.id, f"SQL execution failed: {message}",
                             retryable=is_transient_sql_error(exc)) from exc
        if not run.got:
            return Deferred()  # taken by another worker meanwhile
        ctx.ran_sql = True
        if run.state is not None:
            task.state = run.state
        if run.error is not None:
            # only the step's own effects were rolled back: its task is still held, so the
            # attempt is counted and its backoff applies before anyone runs it again
            return Failed(f"SQL execution failed: {run.error}", is_transient_sqlstate(run.sqlstate))
        return Outcome.ok({"rows": run.rows, "row_count": len(run.rows)})

    def _returns_rows(self, ctx: Context, node: Node, sql: str) -> bool:
        # substituted values are literals and cannot change the kind of statement, so one
        # classification serves every instance with the same step text, variables and label
        key = (node.spec["sql"], ctx.instance.label, ctx.instance.vars_key)
        rows_wanted = self._kinds.get(key)
        if rows_wanted is None:
            rows_wanted = self._kinds[key] = returns_rows(sql)
            if len(self._kinds) > 10_000:
                self._kinds.clear()
        return rows_wanted

    def statement(self, ctx: Context, node: Node, task: Task) -> bytes | None:
        """The statement that runs ``task`` (a transactional step) and locks it first, for the
        worker to send ahead (Worker._run_claims); None when the step cannot run that way."""
        try:
            sql = substitute_sql(substitute_vars(node.spec["sql"], ctx.variables), task.scope)
        except SubstitutionError:
            return None
        if not node.spec.get("transactional", True):
            return None
        return ctx.store.step_statement(task.id, ctx.instance.role_oid, sql,
                                        self._returns_rows(ctx, node, sql),
                                        ctx.instance.search_path, task.parent_id, ctx.lease)

    def chained_statement(self, ctx: Context, node: Node, task: Task,
                          ops: list[list[Any]]) -> bytes:
        """The statement that runs ``task`` as a step of a chain (runtime.chains), records its
        node as completed and applies ``ops``, its other writes."""
        sql = substitute_sql(substitute_vars(node.spec["sql"], ctx.variables), task.scope)
        assert task.parent_id is not None
        return ctx.store.chained_step_statement(
            task.id, task.instance_id, node.id, ctx.instance.role_oid, sql,
            self._returns_rows(ctx, node, sql), ctx.instance.search_path, task.parent_id, ops,
            ctx.lease)

    @staticmethod
    def _outside(ctx: Context, task: Task, sql: str) -> Outcome:
        kind = statement_kind(sql)
        if kind not in OUTSIDE_ALLOWED:
            return Outcome.error(
                f"{kind or 'this statement'} cannot run outside a transaction block in a "
                "workflow step; allowed there: VACUUM, ANALYZE, CLUSTER, REINDEX, "
                "CREATE/DROP INDEX CONCURRENTLY, CREATE/DROP DATABASE, tablespaces, ALTER SYSTEM"
            )
        ctx.ran_sql = True
        role_oid, search_path = ctx.instance.role_oid, ctx.instance.search_path

        def work(store: Store) -> Record:
            try:
                store.run_outside_transaction(role_oid, sql, search_path)
            except psycopg.Error as exc:
                if isinstance(exc, psycopg.OperationalError | psycopg.errors.InvalidSqlStatementName) \
                        or store.conn.broken:
                    raise  # the connection is gone, or the session's fault: the statement runs again
                message = (exc.diag.message_primary if exc.diag else None) or str(exc)
                return OutsideTransaction.completing(
                    Outcome.error(f"SQL execution failed: {message}"))
            return OutsideTransaction.completing(Outcome.ok({"rows": [], "row_count": 0}))

        raise OutsideTransaction(task.id, "sql", work)


# Statements that cannot run in a transaction block and run no code of the user's that could
# change roles (index expressions run in security-restricted mode), so they may run under
# SET ROLE on the worker's session.
OUTSIDE_ALLOWED = frozenset({
    "VacuumStmt", "ClusterStmt", "ReindexStmt", "IndexStmt", "DropStmt", "CreatedbStmt",
    "DropdbStmt", "CreateTableSpaceStmt", "DropTableSpaceStmt", "AlterSystemStmt",
})


def runs_outside(node: Node) -> bool:
    """Whether a node's work runs with no transaction open (it raises OutsideTransaction): an
    HTTP request, a statement that cannot run in a transaction block."""
    return node.kind in ("http", "http_multipart") or \
        (node.kind == "sql" and not node.spec.get("transactional", True))


def statement_kind(sql: str) -> str | None:
    """The parse-tree node name of a single statement (``VacuumStmt``), None if unparsable."""
    try:
        import pglast

        statements = pglast.parse_sql(sql)
    except Exception:
        return None
    return type(statements[0].stmt).__name__ if len(statements) == 1 else None


class SleepExecutor(_Leaf):
    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        ctx.ready_task(node, parent_id, branch, {}, delay=float(node.spec["seconds"]))
        return None

    def run(self, ctx: Context, node: Node, task: Task) -> Outcome | Reschedule | Deferred:
        return Outcome.ok({"slept": True, "seconds": node.spec["seconds"]})


class WaitSignalExecutor(_Leaf):
    """Waits for a buffered signal (FIFO per name); one signal satisfies one wait."""

    FOREVER = 365 * 24 * 3600.0

    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        ctx.ready_task(node, parent_id, branch, {})
        return None

    def run(self, ctx: Context, node: Node, task: Task) -> Outcome | Reschedule | Deferred:
        name = node.spec["signal"]
        found, payload = ctx.store.consume_signal(ctx.instance.id, name)
        if found:
            return Outcome.ok({"signal_name": name, "timed_out": False, "data": payload})
        now = ctx.clock.now().timestamp()
        timeout = node.spec.get("timeout_seconds")
        deadline = task.state.get("deadline")
        if deadline is None:
            deadline = now + timeout if timeout is not None else None
        elif now >= deadline:
            return Outcome.ok({"signal_name": name, "timed_out": True, "data": None})
        delay = self.FOREVER if deadline is None else max(deadline - now, 0.0)
        return Reschedule(delay, {"signal": name, "deadline": deadline})


class BreakExecutor(_Leaf):
    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        raw = node.spec.get("value")
        if raw is None:
            return Outcome("break", None)
        try:
            text = substitute_text(substitute_vars(raw, ctx.variables), scope)
        except SubstitutionError as exc:
            return Outcome.error(str(exc))
        value: JSON
        try:
            value = loads(text)
        except ValueError:
            value = text
        return Outcome("break", value)

    def run(self, ctx: Context, node: Node, task: Task) -> Outcome | Reschedule | Deferred:
        outcome = self.start(ctx, node, task.parent_id, task.branch, task.scope)
        assert outcome is not None
        return outcome


# --- compound nodes --------------------------------------------------------------------------


class SeqExecutor(_Compound):
    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        task = ctx.waiting_task(node, parent_id, branch, scope, {"acc": {}})
        return _started(ctx, task, self._advance(ctx, node, task, 0, None))

    def on_child(self, ctx: Context, node: Node, task: Task, branch: int,
                 outcome: Outcome) -> Outcome | None:
        return self._advance(ctx, node, task, branch + 1, outcome)

    def _advance(self, ctx: Context, node: Node, task: Task, index: int,
                 outcome: Outcome | None) -> Outcome | None:
        acc: dict[str, JSON] = task.state["acc"]
        children = node.children
        while True:
            if outcome is not None:
                if outcome.status != "ok":
                    return self._done(ctx, task, outcome.with_delta(acc))
                acc.update(outcome.delta)
                if index >= len(children):
                    return self._done(ctx, task, Outcome.ok(outcome.value, acc))
            outcome = ctx.start_node(children[index], task.id, index, _scope(task, acc))
            if outcome is None:
                return None
            index += 1

    @staticmethod
    def _done(ctx: Context, task: Task, outcome: Outcome) -> Outcome:
        return outcome


class IfExecutor(_Compound):
    """``if``: the condition (any node), then the taken branch (branch 1)."""

    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        task = ctx.waiting_task(node, parent_id, branch, scope, {"acc": {}})
        outcome = ctx.start_node(node.spec["condition"], task.id, 0, scope)
        if outcome is None:
            return None
        return _started(ctx, task, self.on_child(ctx, node, task, 0, outcome))

    def on_child(self, ctx: Context, node: Node, task: Task, branch: int,
                 outcome: Outcome) -> Outcome | None:
        acc: dict[str, JSON] = task.state["acc"]
        if branch == 1 or outcome.status != "ok":
            return outcome.with_delta(acc)
        acc.update(outcome.delta)
        target = node.spec["then"] if condition_holds(outcome.value) else node.spec["else"]
        return _take_branch(ctx, task, target, acc)


def _take_branch(ctx: Context, task: Task, target: str | None,
                 acc: dict[str, JSON]) -> Outcome | None:
    if target is None:
        return Outcome.ok(None, acc)
    outcome = ctx.start_node(target, task.id, 1, _scope(task, acc))
    return None if outcome is None else outcome.with_delta(acc)


class IfRowsExecutor(_Compound):
    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        name = node.spec["result_name"]
        if name not in scope:
            return Outcome.error(f"df.if_rows: result '{name}' not found")
        result = scope[name]
        if not isinstance(result, dict) or "row_count" not in result:
            return Outcome.error(f"df.if_rows: result '{name}' is not a SQL result (missing row_count)")
        target = node.spec["then"] if (result["row_count"] or 0) > 0 else node.spec["else"]
        if target is None:
            return Outcome.ok(None)
        task = ctx.waiting_task(node, parent_id, branch, scope, {"acc": {}})
        outcome = _take_branch(ctx, task, target, {})
        if outcome is not None:
            ctx.drop_task(task)
        return outcome

    def on_child(self, ctx: Context, node: Node, task: Task, branch: int,
                 outcome: Outcome) -> Outcome | None:
        return outcome


class JoinExecutor(_Compound):
    """All branches in parallel; the first failure cancels the others (fail fast)."""

    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        task = ctx.waiting_task(node, parent_id, branch, scope, {"done": {}})
        if len(node.children) > 1:
            ctx.woke_others = True
            ctx.stop_chain = True
        for index, child in enumerate(node.children):
            outcome = ctx.start_node(child, task.id, index, scope)
            if outcome is not None:
                final = self.on_child(ctx, node, task, index, outcome)
                if final is not None:
                    ctx.drop_task(task)
                    return final
        ctx.store.update_task_state(task.id, task.state)
        return None

    def on_child(self, ctx: Context, node: Node, task: Task, branch: int,
                 outcome: Outcome) -> Outcome | None:
        if outcome.status == "error":
            ctx.cancel_below(task)
            return Outcome.error(f"JOIN branch {branch + 1} failed: {outcome.value}")
        done: dict[str, Any] = task.state["done"]
        done[str(branch)] = {"status": outcome.status, "value": outcome.value,
                             "delta": outcome.delta}
        if len(done) < len(node.children):
            return None
        merged: dict[str, JSON] = {}
        results: list[JSON] = []
        first_break: dict[str, Any] | None = None
        for index in range(len(node.children)):
            entry = done[str(index)]
            merged.update(entry["delta"])
            results.append(entry["value"])
            if entry["status"] == "break" and first_break is None:
                first_break = entry
        if first_break is not None:
            return Outcome("break", first_break["value"], merged)
        return Outcome.ok(results, merged)


class RaceExecutor(_Compound):
    """The first branch to finish, success or failure, decides; the others are cancelled."""

    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        task = ctx.waiting_task(node, parent_id, branch, scope, {})
        if len(node.children) > 1:
            ctx.woke_others = True
            ctx.stop_chain = True
        for index, child in enumerate(node.children):
            outcome = ctx.start_node(child, task.id, index, scope)
            if outcome is not None:
                final = self.on_child(ctx, node, task, index, outcome)
                ctx.drop_task(task)
                return final
        return None

    def on_child(self, ctx: Context, node: Node, task: Task, branch: int,
                 outcome: Outcome) -> Outcome | None:
        ctx.cancel_below(task)
        if outcome.status == "error":
            return Outcome.error(f"RACE branch {branch + 1} failed: {outcome.value}")
        return outcome


class LoopExecutor(_Compound):
    """Body (branch 0), then the while-condition (branch 1) if any; break leaves the loop."""

    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        task = ctx.waiting_task(node, parent_id, branch, scope,
                                {"acc": {}, "last": None, "iteration": 0})
        outcome = ctx.start_node(node.spec["body"], task.id, 0, _iteration_scope(scope, node, 0))
        if outcome is None:
            return None
        return _started(ctx, task, self.on_child(ctx, node, task, 0, outcome))

    def on_child(self, ctx: Context, node: Node, task: Task, branch: int,
                 outcome: Outcome) -> Outcome | None:
        state = task.state
        acc: dict[str, JSON] = state["acc"]
        for _ in range(MAX_INLINE_ITERATIONS):
            if outcome.status == "error":
                return outcome.with_delta(acc)
            acc.update(outcome.delta)
            if outcome.status == "break":
                return Outcome.ok(outcome.value, acc)
            if branch == 0:
                state["last"] = outcome.value
                condition = node.spec.get("condition")
                if condition is not None:
                    next_outcome = ctx.start_node(condition, task.id, 1, _scope(task, acc))
                    if next_outcome is None:
                        return None
                    outcome, branch = next_outcome, 1
                    continue
            elif not condition_holds(outcome.value):
                return Outcome.ok(state["last"], acc)
            state["iteration"] = int(state.get("iteration", 0)) + 1
            next_outcome = ctx.start_node(node.spec["body"], task.id, 0,
                                          _iteration_scope(_scope(task, acc), node,
                                                           state["iteration"]))
            if next_outcome is None:
                return None
            outcome, branch = next_outcome, 0
        return Outcome.error(
            f"loop {node.id} ran {MAX_INLINE_ITERATIONS} iterations without waiting for any "
            "step; add a SQL step or df.sleep to its body"
        )


# The executors of these kinds live in their own modules, which build on the classes above.
from runtime.executors_control import (  # noqa: E402
    RetryExecutor,
    TimeoutExecutor,
    UndoExecutor,
    WaitScheduleExecutor,
)
from runtime.executors_http import HttpExecutor  # noqa: E402

EXECUTORS: dict[str, Executor] = {
    "sql": SqlExecutor(),
    "seq": SeqExecutor(),
    "join": JoinExecutor(),
    "race": RaceExecutor(),
    "if": IfExecutor(),
    "if_rows": IfRowsExecutor(),
    "loop": LoopExecutor(),
    "break": BreakExecutor(),
    "sleep": SleepExecutor(),
    "wait_signal": WaitSignalExecutor(),
    "wait_schedule": WaitScheduleExecutor(),
    "http": HttpExecutor(),
    "http_multipart": HttpExecutor(multipart=True),
    "retry": RetryExecutor(),
    "timeout": TimeoutExecutor(),
    "undo": UndoExecutor(),
}
