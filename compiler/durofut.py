"""``--target pg_durable``: a workflow as the Durofut JSON that pg_durable's ``df.start`` takes.

The envelope is pg_durable's construction-time form (behaviour §4.1): compact JSON, fields in
the order ``node_type, left_node, right_node, condition_node, extra_nodes, query, result_name``,
children embedded, step configuration as compact JSON strings in ``query``, jsonb arguments in
jsonb key order. dfc's n-ary chains become what pg_durable builds: sequences nest to the left,
races pair up (same first-to-finish meaning), joins keep a flat result array with
``extra_nodes``. dfc extensions without a pg_durable equivalent (retry, timeout, undo, time
zones) are refused with DFC602; a cron day of week is rewritten to pg_durable's numbering
(Sunday = 1).
"""

from __future__ import annotations

import json
import re
from typing import Any

from compiler import ir
from compiler.diagnostics import Diagnostic, DiagnosticSink
from compiler.emit import http_method
from compiler.source import SourceFile

_NOTHING = {"node_type": "SQL", "query": "SELECT NULL"}


def to_durofut(workflow: ir.Workflow, source: SourceFile) -> tuple[str, list[Diagnostic]]:
    """The Durofut JSON text of ``workflow`` and the reasons it is not faithful, if any."""
    builder = _Builder(DiagnosticSink())
    envelope = builder.node(workflow.body)
    return _dumps(envelope), builder.sink.items


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def jsonb_order(value: Any) -> Any:
    """``value`` with object keys in jsonb's order: shorter keys first, then bytewise."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode("utf-8")), k.encode("utf-8")))
        return {k: jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [jsonb_order(v) for v in value]
    return value


def _envelope(node_type: str, node: ir.Node, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"node_type": node_type}
    for key in ("left_node", "right_node", "condition_node", "extra_nodes", "query"):
        if fields.get(key) is not None:
            out[key] = fields[key]
    if node.bind is not None:
        out["result_name"] = node.bind.value
    return out


class _Builder:
    def __init__(self, sink: DiagnosticSink) -> None:
        self.sink = sink

    def node(self, node: ir.Node) -> dict[str, Any]:
        result: dict[str, Any] = getattr(self, f"_{node.kind}")(node)
        return result

    def _extension(self, node: ir.Node, what: str) -> dict[str, Any]:
        self.sink.add(
            "DFC602",
            node.span,
            f"{what} is a dfc extension that pg_durable cannot run",
            hint="Compile for the dfc runtime, or remove it for pg_durable.",
        )
        return _NOTHING

    def _sql(self, node: ir.Sql) -> dict[str, Any]:
        return _envelope("SQL", node, query=node.sql.value)

    def _seq(self, node: ir.Seq) -> dict[str, Any]:
        current = self.node(node.steps[0])
        for step in node.steps[1:]:
            current = {"node_type": "THEN", "left_node": current, "right_node": self.node(step)}
        if node.bind is not None:
            current["result_name"] = node.bind.value
        return current

    def _join(self, node: ir.Join) -> dict[str, Any]:
        branches = [self.node(b) for b in node.branches]
        return _envelope(
            "JOIN",
            node,
            left_node=branches[0],
            right_node=branches[1],
            extra_nodes=branches[2:] or None,
        )

    def _race(self, node: ir.Race) -> dict[str, Any]:
        current = self.node(node.branches[0])
        for branch in node.branches[1:]:
            current = {"node_type": "RACE", "left_node": current, "right_node": self.node(branch)}
        if node.bind is not None:
            current["result_name"] = node.bind.value
        return current

    def _if(self, node: ir.If) -> dict[str, Any]:
        otherwise = self.node(node.otherwise) if node.otherwise is not None else _NOTHING
        return _envelope(
            "IF",
            node,
            left_node=self.node(node.then),
            right_node=otherwise,
            condition_node=self.node(node.condition),
        )

    def _if_rows(self, node: ir.IfRows) -> dict[str, Any]:
        otherwise = self.node(node.otherwise) if node.otherwise is not None else _NOTHING
        config = {"condition_type": "result_has_rows", "result_name": node.result_name.value}
        return _envelope(
            "IF", node, left_node=self.node(node.then), right_node=otherwise, query=_dumps(config)
        )

    def _loop(self, node: ir.Loop) -> dict[str, Any]:
        condition = self.node(node.condition) if node.condition is not None else None
        return _envelope("LOOP", node, left_node=self.node(node.body), condition_node=condition)

    def _break(self, node: ir.Break) -> dict[str, Any]:
        value = node.value.value if node.value is not None else None
        return _envelope("BREAK", node, query=_dumps({"break_value": value}))

    def _sleep(self, node: ir.Sleep) -> dict[str, Any]:
        return _envelope("SLEEP", node, query=str(node.seconds))

    def _wait_schedule(self, node: ir.WaitSchedule) -> dict[str, Any]:
        if node.time_zone is not None:
            return self._extension(node, "a time zone for df.wait_for_schedule")
        cron = pg_durable_cron(node.cron.value)
        if cron is None:
            self.sink.add(
                "DFC603",
                node.cron.span,
                "pg_durable fires only when both the day of month and the day of week match; "
                "standard cron fires when either does",
                hint="Restrict only one of the two fields for the same meaning on both.",
            )
            cron = pg_durable_cron(node.cron.value, force=True) or node.cron.value
        return _envelope("WAIT_SCHEDULE", node, query=_dumps({"cron_expr": cron}))

    def _wait_signal(self, node: ir.WaitSignal) -> dict[str, Any]:
        config = {"signal_name": node.signal.value, "timeout_seconds": node.timeout_seconds}
        return _envelope("SIGNAL", node, query=_dumps(config))

    def _http(self, node: ir.Http) -> dict[str, Any]:
        config = {
            "url": node.url.value,
            "method": http_method(node.method),
            "body": node.body.value if node.body is not None else None,
            "headers": jsonb_order(node.headers.value) if node.headers is not None else None,
            "timeout_seconds": node.timeout_seconds,
        }
        return _envelope("HTTP", node, query=_dumps(config))

    def _http_multipart(self, node: ir.HttpMultipart) -> dict[str, Any]:
        config = {
            "url": node.url.value,
            "method": http_method(node.method),
            "parts": jsonb_order(node.parts.value) if node.parts is not None else None,
            "headers": jsonb_order(node.headers.value) if node.headers is not None else None,
            "timeout_seconds": node.timeout_seconds,
        }
        return _envelope("HTTP_MULTIPART", node, query=_dumps(config))

    def _retry(self, node: ir.Retry) -> dict[str, Any]:
        return self._extension(node, "df.retry")

    def _timeout(self, node: ir.Timeout) -> dict[str, Any]:
        return self._extension(node, "df.timeout")

    def _undo(self, node: ir.Undo) -> dict[str, Any]:
        return self._extension(node, "compensation (<-> / df.with_undo)")


_DOW_ITEM = re.compile(r"^(\d+)(?:-(\d+))?(/\d+)?$")


def pg_durable_cron(cron: str, *, force: bool = False) -> str | None:
    """``cron`` with its day of week renumbered for pg_durable (Sunday = 1 … Saturday = 7).

    None when the meaning cannot be kept: pg_durable needs both day fields to match, standard
    cron either, so the two differ whenever both are restricted (unless ``force``).
    """
    fields = cron.split()
    if len(fields) != 5:
        return cron
    if fields[2] != "*" and fields[4] != "*" and not force:
        return None
    items: list[str] = []
    for item in fields[4].split(","):
        match = _DOW_ITEM.match(item)
        if match is None:
            items.append(item)  # *, */n and names mean the same days in both
            continue
        first, last, step = int(match.group(1)), match.group(2), match.group(3) or ""
        if last is None:
            items.append(f"{first % 7 + 1}{step}")
        elif int(last) == 7 and first > 0 and not step:
            items.append(f"{first + 1}-7" if first < 6 else "7")
            items.append("1")
        else:
            items.append(f"{first % 7 + 1}-{min(int(last), 6) + 1}{step}")
    fields[4] = ",".join(dict.fromkeys(items))
    return " ".join(fields)
