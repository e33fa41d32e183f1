"""The plan interpreter: starts nodes, finishes them and hands outcomes to their parents.

Everything here runs inside one step transaction (see :mod:`runtime.worker`). A node is started
by its executor (:mod:`runtime.executors`): leaf nodes that need a worker (SQL, sleep, …) create
a *ready* task; compound nodes create a *waiting* task and start their children at once; nodes
that finish without work (break, an empty branch) return their outcome straight away. When a
node finishes, its outcome goes to the parent task's executor, which may start the next child or
finish in turn, up to the root, whose outcome finishes the instance.

Named results travel as *deltas*: each outcome carries the names bound inside that subtree, and
a parent decides what its later children and its own parent see (DSL.md §4: names survive loop
iterations, JOIN branches merge only what they bound themselves).

Compensation (``undo`` nodes): a completed forward step pushes its undo step on the instance's
compensation stack. When the root fails, the undo steps run one at a time, newest first, as
top-level activations on the :data:`COMPENSATION_BRANCH`; when the stack is empty the instance
fails with its original error and a note of what was undone.

Cancellation: :meth:`Context.cancel_below` removes a subtree's activations, marks its running
nodes ``cancelled`` and asks, on commit, every worker to interrupt a statement it is running for
one of them (``pg_notify('df_cancel', …)``, see :mod:`runtime.worker`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from runtime.backoff import DEFAULT_POLICY
from runtime.clock import Clock, RealClock
from runtime.http_client import HttpSettings
from runtime.jsonvalues import JSON, dumps
from runtime.plans import Node, Plan
from runtime.store import Compensation, Instance, Store, Task

BREAK_OUTSIDE_LOOP = (
    "df.break() was called outside of a loop. df.break() may only be used inside df.loop()."
)

# Results of these kinds are never stored under their name (as in pg_durable).
UNBOUND_KINDS = frozenset({"sleep", "wait_schedule", "break"})
# The branch number of top-level activations that run an undo step.
COMPENSATION_BRANCH = -1


@dataclass(frozen=True)
class Outcome:
    """How a node ended: ``ok`` with a result, ``error`` with a message, or ``break``."""

    status: Literal["ok", "error", "break"]
    value: JSON
    delta: dict[str, JSON] = field(default_factory=dict)

    @classmethod
    def ok(cls, value: JSON, delta: dict[str, JSON] | None = None) -> Outcome:
        return cls("ok", value, delta or {})

    @classmethod
    def error(cls, message: str, delta: dict[str, JSON] | None = None) -> Outcome:
        return cls("error", message, delta or {})

    def with_delta(self, before: dict[str, JSON]) -> Outcome:
        """This outcome with ``before`` bindings underneath its own."""
        return Outcome(self.status, self.value, {**before, **self.delta})


@dataclass(frozen=True)
class Reschedule:
    """A leaf that is not done yet: run it again after ``delay`` seconds with ``state``."""

    delay: float
    state: dict[str, Any]


@dataclass(frozen=True)
class Deferred:
    """A leaf that is busy elsewhere: its task stays as it is (already postponed)."""


@dataclass(frozen=True)
class Failed:
    """A leaf's attempt failed and took only its own effects with it (its task is still held):
    try it again later, or fail the node, in the same transaction."""

    message: str
    retryable: bool = False


# What a step's outside work leaves to record: called in a new transaction, with the task
# claimed again, to finish the step (complete it, or schedule another attempt).
Record = Callable[["Context", Task], None]


class OutsideTransaction(Exception):
    """A step whose work must run with no transaction open: a statement that cannot run in a
    transaction block, an HTTP request. The worker commits what was decided so far (holding a
    session lock on the task, so no other worker runs it meanwhile and a worker that dies
    releases it at once), runs ``work`` at least once, then claims the task again in a new
    transaction and hands it to the :data:`Record` that ``work`` returned; when the task is gone
    by then (cancelled, a lost race) the outcome is dropped. See ``Worker._run_outside``."""

    def __init__(self, task_id: int, kind: str, work: Callable[[Store], Record]) -> None:
        super().__init__(f"{kind} step of task {task_id}")
        self.task_id = task_id
        self.kind = kind
        self.work = work

    @staticmethod
    def completing(outcome: Outcome) -> Record:
        """The record that completes the step with ``outcome``."""
        return lambda ctx, task: ctx.complete(task, outcome)


class StepFailed(Exception):
    """The user's SQL was cancelled or refused: its transaction is lost, the failure is
    recorded in a new one. (Ordinary failures are :class:`Failed` results.)"""

    def __init__(self, task_id: int, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.message = message
        self.retryable = retryable


@dataclass
class Settings:
    statement_timeout_ms: int = 0
    clock: Clock = field(default_factory=RealClock)
    http: HttpSettings = field(default_factory=HttpSettings)


def _snapshot(state: dict[str, Any]) -> str:
    """A task state's content, to tell whether a step changed it."""
    return json.dumps(state, default=str)


class Executor(Protocol):
    """What every node kind provides. ``leaf`` kinds are run by a worker through ``run``."""

    leaf: bool

    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None: ...

    def on_child(self, ctx: Context, node: Node, task: Task, branch: int,
                 outcome: Outcome) -> Outcome | None: ...

    def run(self, ctx: Context, node: Node, task: Task) -> Outcome | Reschedule | Deferred | Failed:
        ...


class Context:
    """One step's view of an instance: its plan, variables and the store of the transaction."""

    def __init__(self, store: Store, instance: Instance, plan: Plan, settings: Settings,
                 executors: dict[str, Executor]) -> None:
        self.store = store
        self.instance = instance
        self.plan = plan
        self.settings = settings
        self.executors = executors
        self.variables: dict[str, str] = {
            **{k: str(v) for k, v in instance.vars.items()},
            "sys_instance_id": instance.id,
            "sys_label": instance.label or "",
        }
        self.woke_others = False
        self.ran_sql = False
        # commit before running more of this instance: parallel branches and timers must be
        # visible to other workers before a long statement starts
        self.stop_chain = False
        self.clock = settings.clock
        # The step the worker may go on with right after this transaction, without claiming it:
        # the first ready task this step created, when it is a transactional SQL step due now
        # (see runtime.worker). ``ready_count`` tells whether it was the only one.
        self.next_step: Task | None = None
        self.ready_count = 0
        # a SQL step's statement goes under a savepoint sent in its own message, rolled back to
        # when the statement fails in a way that aborts the transaction (a chained step, see
        # runtime.worker: it must fail alone, not take the earlier work of the transaction along)
        self.step_savepoint = False
        # While a chain of steps is planned (runtime.chains): the steps it creates are due this
        # many seconds later, so that no other worker takes one between the chain's
        # transactions (the chain takes them at once; after a crash, others do then).
        self.lease = 0.0

    # --- creating activations ---------------------------------------------------------------

    def ready_task(self, node: Node, parent_id: int | None, branch: int,
                   scope: dict[str, JSON], *, delay: float = 0.0,
                   state: dict[str, Any] | None = None) -> None:
        if delay > 0:
            self.woke_others = True
        full_state = {"activated": True, **(state or {})}
        following = (self.ready_count == 0 and delay <= 0 and node.kind == "sql"
                     and node.spec.get("transactional", True))
        self.ready_count += 1
        task_id = self.store.insert_task(
            instance_id=self.instance.id, node_id=node.id, parent_id=parent_id, branch=branch,
            status="ready", scope=scope, state=full_state,
            delay=delay if delay > 0 else self.lease, want_id=False, next_step=following,
        )
        if task_id is not None:
            self.next_step = Task(task_id, self.instance.id, node.id, parent_id, branch, "ready",
                                  scope, full_state)

    def waiting_task(self, node: Node, parent_id: int | None, branch: int,
                     scope: dict[str, JSON], state: dict[str, Any]) -> Task:
        task_id = self.store.insert_task(
            instance_id=self.instance.id, node_id=node.id, parent_id=parent_id, branch=branch,
            status="waiting", scope=scope, state=state,
        )
        assert task_id is not None
        return Task(task_id, self.instance.id, node.id, parent_id, branch, "waiting", scope, state)

    def drop_task(self, task: Task) -> None:
        self.store.delete_task(task.id)

    def cancel_below(self, task: Task) -> None:
        """Cancel everything ``task`` started: its activations go, their running nodes read
        ``cancelled``, and statements running for them elsewhere are interrupted (on commit)."""
        busy = self.store.cancel_subtrees(self.instance.id, [task.id])
        if busy:
            self.store.notify_cancel(self.instance.id, busy)

    # --- the interpreter --------------------------------------------------------------------

    def start_node(self, node_id: str, parent_id: int | None, branch: int,
                   scope: dict[str, JSON]) -> Outcome | None:
        """Start a node; its outcome if it finished at once, else None."""
        node = self.plan.nodes[node_id]
        self.store.node_started(self.instance.id, node.id)
        outcome = self.executors[node.kind].start(self, node, parent_id, branch, scope)
        return None if outcome is None else self.conclude(node, outcome)

    def conclude(self, node: Node, outcome: Outcome) -> Outcome:
        """Record how a node ended and add its own binding to the outcome."""
        failed = outcome.status == "error"
        self.store.node_finished(self.instance.id, node.id, "failed" if failed else "completed",
                                 outcome.value)
        if outcome.status == "ok" and node.bind and node.kind not in UNBOUND_KINDS:
            return Outcome("ok", outcome.value, {**outcome.delta, node.bind: outcome.value})
        return outcome

    def retry_delay(self, node: Node, task: Task, message: str, retryable: bool) -> float | None:
        """Record a failed attempt of a leaf; the delay before the next one, or None when the
        failure is final (not retryable, attempts used up, or a ``retry`` node decides)."""
        attempts = int(task.state.get("attempts", 1))
        self.store.node_attempt(self.instance.id, node.id, attempts, message)
        parent = self.plan.parents.get(node.id)
        if not retryable or (parent is not None and self.plan.nodes[parent].kind == "retry"):
            return None
        if not DEFAULT_POLICY.allows_another(attempts):
            return None
        self.woke_others = True
        return DEFAULT_POLICY.delay(attempts)

    def step_failed(self, task: Task, message: str, retryable: bool) -> None:
        """A claimed leaf's attempt failed: try it again later, or fail the node."""
        node = self.plan.nodes[task.node_id]
        delay = self.retry_delay(node, task, message, retryable)
        if delay is None:
            self.complete(task, Outcome.error(message))
            return
        attempts = int(task.state.get("attempts", 1))
        self.store.schedule_task(task.id, delay, {**task.state, "attempts": attempts + 1})

    def complete(self, task: Task, outcome: Outcome) -> None:
        """A claimed task's node finished: record it and pass the outcome upwards."""
        node = self.plan.nodes[task.node_id]
        if int(task.state.get("attempts", 1)) > 1:
            self.store.node_attempt(self.instance.id, node.id, int(task.state["attempts"]), None)
        self.store.delete_task(task.id)
        self.propagate(task.parent_id, task.branch, self.conclude(node, outcome))

    def propagate(self, parent_id: int | None, branch: int, outcome: Outcome) -> None:
        while parent_id is not None:
            parent = self.store.lock_task(parent_id)
            if parent is None:
                return  # the parent was cancelled (a lost race, a failed join): discard
            node = self.plan.nodes[parent.node_id]
            before = _snapshot(parent.state)
            result = self.executors[node.kind].on_child(self, node, parent, branch, outcome)
            if result is None:
                if _snapshot(parent.state) != before:  # a sequence moving on often changes none
                    self.store.update_task_state(parent.id, parent.state)
                return
            self.store.delete_task(parent.id)
            outcome = self.conclude(node, result)
            parent_id, branch = parent.parent_id, parent.branch
        if branch == COMPENSATION_BRANCH:
            self.compensated(outcome)
        else:
            self.finish_instance(outcome)

    def finish_instance(self, outcome: Outcome) -> None:
        if outcome.status != "ok":
            message = BREAK_OUTSIDE_LOOP if outcome.status == "break" else str(outcome.value)
            compensation = self.store.next_compensation(self.instance.id)
            if compensation is not None:
                self.store.set_instance_failure(self.instance.id, message)
                self._compensate(compensation)
                return
        if outcome.status == "ok":
            self.store.finish_instance(self.instance.id, "completed", dumps(outcome.value))
        elif outcome.status == "break":
            self.store.finish_instance(self.instance.id, "failed", BREAK_OUTSIDE_LOOP)
        else:
            self.store.finish_instance(self.instance.id, "failed", str(outcome.value))

    def _compensate(self, compensation: Compensation | None) -> None:
        """Run undo steps, newest first, until one has to wait for a worker."""
        while compensation is not None:
            outcome = self.start_node(compensation.undo_node, None, COMPENSATION_BRANCH,
                                      compensation.scope)
            if outcome is None:
                return
            self.store.finish_running_compensation(self.instance.id, outcome.status != "error")
            compensation = self.store.next_compensation(self.instance.id)
        self._finish_compensated()

    def compensated(self, outcome: Outcome) -> None:
        """An undo step finished: go on with the next one, or fail the instance."""
        self.store.finish_running_compensation(self.instance.id, outcome.status != "error")
        self._compensate(self.store.next_compensation(self.instance.id))

    def _finish_compensated(self) -> None:
        failure, ran, failed = self.store.compensation_summary(self.instance.id)
        note = f"compensated: {ran} undo step{'s' if ran != 1 else ''} ran"
        if failed:
            note += f", {failed} failed"
        self.store.finish_instance(self.instance.id, "failed", f"{failure} ({note})")

    def run_task(self, task: Task) -> None:
        """Execute a claimed ready task."""
        node = self.plan.nodes[task.node_id]
        if not task.state.get("activated"):
            # the root activation df.start queued: start the node now
            self.store.delete_task(task.id)
            outcome = self.start_node(node.id, task.parent_id, task.branch, task.scope)
            if outcome is not None:
                self.propagate(task.parent_id, task.branch, outcome)
            return
        result = self.executors[node.kind].run(self, node, task)
        if isinstance(result, Deferred):
            return
        if isinstance(result, Failed):
            self.step_failed(task, result.message, result.retryable)
            return
        if isinstance(result, Reschedule):
            self.store.delete_task(task.id)
            self.ready_task(node, task.parent_id, task.branch, task.scope, delay=result.delay,
                            state=result.state)
            return
        self.complete(task, result)
