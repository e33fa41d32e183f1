"""Executors for time and failure handling: ``wait_schedule``, ``retry``, ``timeout``, ``undo``.

* ``wait_schedule``: the next fire time is computed from the worker's clock when the wait starts
  (:mod:`runtime.cron`) and stored as the task's due time, so it survives restarts; a worker that
  was down fires once when it is back.
* ``retry``: runs its body again after a failure, up to ``max_attempts`` attempts in all, with the
  node's own backoff (:mod:`runtime.backoff`); between attempts the retry task itself is a timer.
* ``timeout``: its task is due at the deadline while the body runs; if the body is still running
  when it is claimed, the body is cancelled (statements in flight are interrupted) and the node
  fails.
* ``undo``: when the forward step completes, its undo step goes on the instance's compensation
  stack (see :mod:`runtime.engine`).
"""

from __future__ import annotations

from datetime import datetime

from runtime.backoff import RetryPolicy
from runtime.cron import CronError, next_fire
from runtime.engine import Context, Deferred, Outcome, Reschedule
from runtime.executors import _Compound, _Leaf, _scope, _started
from runtime.jsonvalues import JSON
from runtime.plans import Node
from runtime.store import Task


class WaitScheduleExecutor(_Leaf):
    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        now = ctx.clock.now()
        try:
            due = next_fire(node.spec["cron"], now, node.spec.get("time_zone"))
        except CronError as exc:
            return Outcome.error(str(exc))
        ctx.ready_task(node, parent_id, branch, {}, delay=(due - now).total_seconds(),
                       state={"due": due.isoformat()})
        return None

    def run(self, ctx: Context, node: Node, task: Task) -> Outcome | Reschedule | Deferred:
        due = datetime.fromisoformat(task.state["due"])
        remaining = (due - ctx.clock.now()).total_seconds()
        if remaining > 0:  # claimed early (the database clock ran ahead of the worker's)
            return Reschedule(remaining, task.state)
        return Outcome.ok({"scheduled": True})


class RetryExecutor(_Compound):
    """Body (branch 0) again after a failure, with the node's backoff between attempts."""

    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        task = ctx.waiting_task(node, parent_id, branch, scope,
                                {"attempt": 1, "activated": True})
        outcome = ctx.start_node(node.spec["body"], task.id, 0, scope)
        if outcome is None:
            ctx.store.update_task_state(task.id, task.state)
            return None
        result = self.on_child(ctx, node, task, 0, outcome)
        if result is not None:
            ctx.drop_task(task)
        return result

    def on_child(self, ctx: Context, node: Node, task: Task, branch: int,
                 outcome: Outcome) -> Outcome | None:
        attempt = int(task.state.get("attempt", 1))
        policy = RetryPolicy.from_spec(node.spec)
        if outcome.status != "error":
            ctx.store.node_attempt(ctx.instance.id, node.id, attempt, None)
            return outcome
        message = str(outcome.value)
        ctx.store.node_attempt(ctx.instance.id, node.id, attempt, message)
        if not policy.allows_another(attempt):
            suffix = f" (after {attempt} attempts)" if attempt > 1 else ""
            return Outcome.error(message + suffix, outcome.delta)
        task.state.update({"attempt": attempt + 1, "restart": True})
        ctx.store.schedule_task(task.id, policy.delay(attempt), task.state)
        ctx.woke_others = True
        return None

    def run(self, ctx: Context, node: Node, task: Task) -> Outcome | Reschedule | Deferred:
        """The backoff delay is over: start the next attempt."""
        task.state.pop("restart", None)
        ctx.store.wait_task(task.id, task.state)
        outcome = ctx.start_node(node.spec["body"], task.id, 0, task.scope)
        if outcome is None:
            return Deferred()
        result = self.on_child(ctx, node, task, 0, outcome)
        return Deferred() if result is None else result


def _seconds(value: float) -> str:
    number = int(value) if value == int(value) else value
    return f"{number} second{'' if number == 1 else 's'}"


class TimeoutExecutor(_Compound):
    """The body (branch 0) must finish within ``seconds``, or it is cancelled and fails."""

    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        task = ctx.waiting_task(node, parent_id, branch, scope, {"activated": True})
        outcome = ctx.start_node(node.spec["body"], task.id, 0, scope)
        if outcome is not None:
            ctx.drop_task(task)
            return outcome
        # the timeout's own task becomes the timer; a finishing body deletes it first
        ctx.store.schedule_task(task.id, float(node.spec["seconds"]), task.state)
        ctx.woke_others = True
        ctx.stop_chain = True  # the timer must be committed before the body's work starts
        return None

    def on_child(self, ctx: Context, node: Node, task: Task, branch: int,
                 outcome: Outcome) -> Outcome | None:
        return outcome

    def run(self, ctx: Context, node: Node, task: Task) -> Outcome | Reschedule | Deferred:
        ctx.cancel_below(task)
        return Outcome.error(f"timed out after {_seconds(float(node.spec['seconds']))}")


class UndoExecutor(_Compound):
    """The forward step (branch 0); once it completes, its undo step is remembered."""

    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        task = ctx.waiting_task(node, parent_id, branch, scope, {})
        outcome = ctx.start_node(node.spec["body"], task.id, 0, scope)
        if outcome is None:
            return None
        return _started(ctx, task, self.on_child(ctx, node, task, 0, outcome))

    def on_child(self, ctx: Context, node: Node, task: Task, branch: int,
                 outcome: Outcome) -> Outcome | None:
        if outcome.status == "ok":
            # the undo step sees what the forward step saw and bound
            ctx.store.push_compensation(ctx.instance.id, node.id, node.spec["undo"],
                                        _scope(task, outcome.delta))
        return outcome
