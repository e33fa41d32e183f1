"""Executors of ``http`` and ``http_multipart`` steps (client: :mod:`runtime.http_client`).

A step may send requests only when its role was granted them
(``df.grant_usage(role, include_http => true)``); this is checked before every attempt. Retryable
failures (5xx, timeouts, connection errors) are tried again with the default policy
(:data:`runtime.backoff.DEFAULT_POLICY`) unless a ``retry`` node around the step decides; every
attempt of one activation sends the same ``Idempotency-Key``.

The request is sent with no transaction open and no row lock held (:class:`OutsideTransaction`):
the claiming transaction checks the grant, builds the request (substitution, the key) and
commits; the worker then sends it and records the outcome in a new transaction. Meanwhile a
session lock on the task keeps other workers from sending it too, while ``df.cancel``,
``df.signal`` and everything else that touches the instance go on at once; a response for a task
that is gone by then (cancelled) is dropped. A cancellation of the task that reaches the worker
(``df_cancel``) aborts the request itself (:class:`runtime.http_client.Abort`, handed over by the
worker with :func:`runtime.http_client.abortable`): nothing is recorded and the executor is free
at once. A worker that dies after sending makes the step run again (at least once, with the same
key).
"""

from __future__ import annotations

from runtime.engine import Context, Deferred, Outcome, OutsideTransaction, Record, Reschedule
from runtime.executors import ITERATION_KEY, _Leaf
from runtime.http_client import (
    HttpFailure,
    HttpRequest,
    HttpSettings,
    build_multipart,
    build_request,
    current_abort,
    idempotency_key,
    send,
)
from runtime.jsonvalues import JSON
from runtime.plans import Node
from runtime.store import Task
from runtime.substitution import referenced_names


def _wanted(node: Node, ctx: Context) -> set[str]:
    texts = [node.spec.get("url") or "", node.spec.get("body") or ""]
    texts.extend(str(v) for v in (node.spec.get("headers") or {}).values())
    for part in node.spec.get("parts") or []:
        if isinstance(part, dict):
            texts.extend(str(v) for v in part.values())
    texts.extend(ctx.variables.values())
    names: set[str] = {ITERATION_KEY}
    for text in texts:
        names |= referenced_names(text)
    return names


class HttpExecutor(_Leaf):
    def __init__(self, multipart: bool = False) -> None:
        self.multipart = multipart

    def start(self, ctx: Context, node: Node, parent_id: int | None, branch: int,
              scope: dict[str, JSON]) -> Outcome | None:
        wanted = _wanted(node, ctx)
        ctx.ready_task(node, parent_id, branch, {k: v for k, v in scope.items() if k in wanted})
        return None

    def run(self, ctx: Context, node: Node, task: Task) -> Outcome | Reschedule | Deferred:
        allowed, role = ctx.store.may_use_http(ctx.instance.role_oid)
        if not allowed:
            return Outcome.error(
                f"Blocked: role '{role}' may not make HTTP requests; an administrator can allow "
                f"it with SELECT df.grant_usage('{role}', include_http => true)"
            )
        generation = str(task.scope.get(ITERATION_KEY, ""))
        key = idempotency_key(ctx.instance.id, node.id, generation)
        builder = build_multipart if self.multipart else build_request
        try:
            request = builder(node.spec, ctx.variables, task.scope, key)
        except HttpFailure as failure:
            delay = ctx.retry_delay(node, task, failure.message, failure.retryable)
            if delay is not None:
                attempts = int(task.state.get("attempts", 1))
                return Reschedule(delay, {**task.state, "attempts": attempts + 1})
            return Outcome.error(failure.message)
        settings = ctx.settings.http
        raise OutsideTransaction(task.id, "http", lambda store: _send(request, settings))


def _send(request: HttpRequest, settings: HttpSettings) -> Record:
    """Send the request (no transaction open); what to record once the task is claimed again.
    :class:`runtime.http_client.Aborted` (the task was cancelled) goes up to the worker."""
    try:
        envelope = send(request, settings, current_abort())
    except HttpFailure as failure:
        message, retryable = failure.message, failure.retryable
        return lambda ctx, task: ctx.step_failed(task, message, retryable)
    return OutsideTransaction.completing(Outcome.ok(envelope))
