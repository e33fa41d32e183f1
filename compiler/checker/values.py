"""Argument values pg_durable checks when a step is built, checked here at compile time (DFC5xx).

HTTP methods and URL schemes, signal names, negative sleeps, non-positive timeouts, multipart
parts, header objects and retry settings. Cron expressions and time zones have their own module
(:mod:`compiler.checker.schedule`).
"""

from __future__ import annotations

import difflib
import re

from compiler import ir
from compiler.checker.context import CheckContext
from compiler.diagnostics import Edit, Fix
from compiler.source import Span

HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
MULTIPART_METHODS = ("POST", "PUT", "PATCH")
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*):")


def check(ctx: CheckContext) -> None:
    for workflow in ctx.workflows:
        by_kind = ctx.steps(workflow).by_kind
        for kind, checker in _CHECKS.items():
            for node in by_kind.get(kind, ()):
                checker(ctx, node)


def _sleep(ctx: CheckContext, node: ir.Node) -> None:
    assert isinstance(node, ir.Sleep)
    if node.seconds < 0:
        ctx.sink.add(
            "DFC508",
            node.seconds_span,
            f"df.sleep cannot wait a negative time ({node.seconds} seconds)",
            hint="Use 0 or more seconds.",
        )


def _wait_signal(ctx: CheckContext, node: ir.Node) -> None:
    assert isinstance(node, ir.WaitSignal)
    if not node.signal.value.strip():
        ctx.sink.add(
            "DFC507",
            node.signal.span,
            "a signal name cannot be empty",
            hint="Name the signal that df.signal(instance_id, 'name', data) will send.",
        )
    if node.timeout_seconds is not None and node.timeout_seconds <= 0:
        _timeout(ctx, node.timeout_span or node.span, node.timeout_seconds, "df.wait_for_signal")


def _timeout(ctx: CheckContext, span: Span, value: float, what: str) -> None:
    ctx.sink.add(
        "DFC509",
        span,
        f"{what}: the timeout must be positive, not {_num(value)}",
        hint="Give a number of seconds greater than 0 (for df.wait_for_signal, NULL waits "
        "forever).",
    )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _http(ctx: CheckContext, node: ir.Node) -> None:
    assert isinstance(node, ir.Http | ir.HttpMultipart)
    function = "df.http" if isinstance(node, ir.Http) else "df.http_multipart"
    allowed = HTTP_METHODS if isinstance(node, ir.Http) else MULTIPART_METHODS
    if node.method is not None:
        method = node.method.value.strip().upper()
        if method not in allowed:
            close = difflib.get_close_matches(method, allowed, n=1, cutoff=0.5)
            fixes = (
                (Fix(f"Use {close[0]}", (Edit(node.method.span, f"'{close[0]}'"),)),)
                if close
                else ()
            )
            ctx.sink.add(
                "DFC505",
                node.method.span,
                f"{function}: invalid HTTP method {node.method.value!r}",
                hint=f"Use one of {', '.join(allowed)}."
                + (f" Did you mean {close[0]}?" if close else ""),
                fixes=fixes,
            )
    _url(ctx, node.url, function)
    if node.timeout_seconds <= 0:
        _timeout(ctx, node.timeout_span or node.span, node.timeout_seconds, function)
    _headers(ctx, node.headers, function)
    if isinstance(node, ir.HttpMultipart):
        _parts(ctx, node)


def _url(ctx: CheckContext, url: ir.Text, function: str) -> None:
    text = url.value
    stripped = text.lstrip()
    if stripped.startswith(("$", "{")):
        return  # the scheme comes from a substituted value; the runtime checks it
    match = _SCHEME.match(text)
    if match is None or not text[match.end() :].startswith("//"):
        ctx.sink.add(
            "DFC506",
            url.span,
            f"{function}: {text!r} is not an absolute http(s) URL",
            hint="Write the full URL, e.g. 'https://api.example.com/items', or start it with "
            "a {var} that holds the base URL.",
        )
        return
    scheme = match.group(1)
    if scheme.lower() not in ("http", "https"):
        ctx.sink.add(
            "DFC506",
            ctx.span(url, match.start(1), match.end(1)),
            f"{function}: unsupported URL scheme {scheme!r}; only http and https are allowed",
        )


def _headers(ctx: CheckContext, headers: ir.Json | None, function: str) -> None:
    if headers is None:
        return
    if not isinstance(headers.value, dict):
        ctx.sink.add(
            "DFC515",
            headers.span,
            f"{function}: headers must be a JSON object of names to values",
            hint='For example \'{"Accept": "application/json"}\'::jsonb.',
        )
        return
    for key, value in headers.value.items():
        if not isinstance(value, str):
            ctx.sink.add(
                "DFC515",
                headers.span,
                f"{function}: the value of header {key!r} must be a string, not "
                f"{type(value).__name__}",
                hint="pg_durable silently drops headers whose value is not a string; quote it.",
            )


def _parts(ctx: CheckContext, node: ir.HttpMultipart) -> None:
    if node.parts is None:
        ctx.sink.add(
            "DFC513",
            node.span,
            "df.http_multipart needs parts: a JSON array of {name, data_b64} objects",
            hint='For example \'[{"name": "file", "data_b64": "aGk="}]\'::jsonb.',
        )
        return
    parts = node.parts.value
    if not isinstance(parts, list) or not parts:
        ctx.sink.add(
            "DFC513",
            node.parts.span,
            "parts must be a non-empty JSON array of part objects",
            hint='Each part is {"name": ..., "data_b64": ...} with optional filename and '
            "content_type.",
        )
        return
    for index, part in enumerate(parts):
        missing = [
            key
            for key in ("name", "data_b64")
            if not isinstance(part, dict) or not isinstance(part.get(key), str)
        ]
        if missing:
            ctx.sink.add(
                "DFC513",
                node.parts.span,
                f"part {index + 1} needs string fields {', '.join(missing)}",
                hint="Each part is an object with name and data_b64 (base64 of the content).",
            )


def _retry(ctx: CheckContext, node: ir.Node) -> None:
    assert isinstance(node, ir.Retry)
    span = node.args_span or node.span
    problems = []
    if node.max_attempts < 1:
        problems.append(f"max_attempts must be at least 1, not {node.max_attempts}")
    if node.initial_delay_seconds < 0:
        problems.append("initial_delay_seconds cannot be negative")
    if node.backoff_factor < 1:
        problems.append("backoff_factor must be at least 1")
    if node.max_delay_seconds < 0:
        problems.append("max_delay_seconds cannot be negative")
    for problem in problems:
        ctx.sink.add("DFC514", span, f"df.retry: {problem}")


def _timeout_node(ctx: CheckContext, node: ir.Node) -> None:
    assert isinstance(node, ir.Timeout)
    if node.seconds <= 0:
        _timeout(ctx, node.seconds_span or node.span, node.seconds, "df.timeout")


_CHECKS = {
    ir.Sleep: _sleep,
    ir.WaitSignal: _wait_signal,
    ir.Http: _http,
    ir.HttpMultipart: _http,
    ir.Retry: _retry,
    ir.Timeout: _timeout_node,
}
