"""Plans: the IR of one workflow as a versioned JSON document (``docs/plan-format.md``).

Nodes get ids ``n0, n1, …`` in pre-order and are written as a flat table, children by id. One
method per node kind (``_<kind>``) writes that kind's fields. The output is deterministic: the
same source gives the same bytes, and ``hash`` covers everything except ``hash`` and
``compiler`` (canonical JSON: sorted keys, no spaces, UTF-8).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import orjson

from compiler import ir
from compiler.refs import scan_sql, scan_text
from compiler.sqlshape import analyse

FORMAT = "dfc-plan"
FORMAT_VERSION = 1
SYSTEM_VARIABLES = frozenset({"sys_instance_id", "sys_label"})


@cache  # the version of the running compiler: looked up once, not once per plan
def compiler_version() -> str:
    from dfc import __version__

    return f"dfc {__version__}"


def emit_plan(
    workflow: ir.Workflow,
    program: ir.Program,
    declared: dict[str, ir.SetVar] | None = None,
) -> dict[str, Any]:
    """The plan of one workflow (assumes the checker found no errors in it).

    ``declared`` is ``program.variables``, passed in when emitting many workflows of one file.
    """
    return _Emitter(workflow, program, declared).plan()


# Canonical JSON, set up once. A plan is a tree of fresh dicts and lists, so the encoder's
# cycle check is skipped.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def plan_hash(plan: dict[str, Any]) -> str:
    """``sha256:`` of the canonical JSON of ``plan`` without ``hash`` and ``compiler``.

    This is the definition (``docs/plan-format.md``); the emitter computes the same bytes
    faster with :func:`_quick_hash` where it can.
    """
    body = {k: v for k, v in plan.items() if k not in ("hash", "compiler")}
    return "sha256:" + hashlib.sha256(_CANONICAL.encode(body).encode("utf-8")).hexdigest()


def _quick_hash(plan: dict[str, Any]) -> str:
    """:func:`plan_hash`, with orjson writing the canonical JSON (about five times faster).

    orjson writes the same bytes as the canonical encoder for strings, keys, integers, true,
    false and null, and for every finite float whose ``repr`` has no exponent: only the
    spelling of exponents (``1e-05`` / ``0.00001``, ``1e+16`` / ``1e16``) and of NaN and the
    infinities differ. So the emitter calls this only for plans without such floats, and
    anything orjson refuses (integers beyond 64 bits, keys that are not strings) falls back.
    """
    body = {k: v for k, v in plan.items() if k not in ("hash", "compiler")}
    try:
        data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return plan_hash(plan)
    return "sha256:" + hashlib.sha256(data).hexdigest()


def orjson_spells_like_json(value: float) -> bool:
    """Whether orjson writes the float ``value`` exactly as the canonical encoder does."""
    spelled = repr(value)
    return "e" not in spelled and "n" not in spelled  # exponents, "nan", "inf"


def dumps(plan: dict[str, Any]) -> str:
    """The file form of a plan: indented JSON, keys in emit order, a final newline."""
    return json.dumps(plan, indent=2, ensure_ascii=False) + "\n"


class _Emitter:
    def __init__(
        self,
        workflow: ir.Workflow,
        program: ir.Program,
        declared: dict[str, ir.SetVar] | None,
    ) -> None:
        self.workflow = workflow
        self.program = program
        self.declared = declared if declared is not None else program.variables
        self.nodes: list[dict[str, Any]] = []
        self.bindings: dict[str, list[str]] = {}
        self.variables: set[str] = set()
        # False once the plan holds a value orjson may spell differently (see _quick_hash).
        self.quick_hash = True

    def plan(self) -> dict[str, Any]:
        workflow = self.workflow
        root = self.node(workflow.body)
        declared = self.declared
        used = sorted(self.variables - SYSTEM_VARIABLES)
        defaults = {name: declared[name].value.value for name in used if name in declared}
        plan: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "compiler": compiler_version(),
            "name": workflow.name,
            "hash": "",
            "label": workflow.label.value if workflow.label is not None else None,
            "database": workflow.database.value if workflow.database is not None else None,
            "transaction_mode": workflow.transaction_mode,
            "root": root,
            "variables": {"used": used, "defaults": defaults},
            "bindings": self.bindings,
            "source": {
                "file": self.program.source.name,
                "line": workflow.span.line,
                "column": workflow.span.column,
            },
            "nodes": self.nodes,
        }
        plan["hash"] = _quick_hash(plan) if self.quick_hash else plan_hash(plan)
        return plan

    def node(self, node: ir.Node) -> str:
        # Runs for every step of the file: the kind and writer come from one table look-up.
        kind, writer = _WRITERS[type(node)]
        node_id = f"n{len(self.nodes)}"
        bind = node.bind
        span = node.span
        entry: dict[str, Any] = {
            "id": node_id,
            "kind": kind,
            "bind": bind.value if bind is not None else None,
            "at_least_once": False,
            "span": {  # Span.to_json(), written out: this runs for every node
                "line": span.line,
                "column": span.column,
                "end_line": span.end_line,
                "end_column": span.end_column,
            },
        }
        self.nodes.append(entry)
        if bind is not None:
            self.bindings.setdefault(bind.value, []).append(node_id)
        writer(self, node, entry)
        return node_id

    def text(self, text: ir.Text | None) -> str | None:
        if text is None:
            return None
        variables = scan_text(text.value).variables
        if variables:
            self.variables.update(v.name for v in variables)
        return text.value

    # -- one method per node kind -------------------------------------------------------------

    def _sql(self, node: ir.Sql, entry: dict[str, Any]) -> None:
        sql = node.sql.value
        scan = scan_sql(sql)
        if scan.variables:
            self.variables.update(v.name for v in scan.variables)
        shape = analyse(scan.masked)
        transactional = shape.transactional
        columns = shape.columns
        entry["sql"] = sql
        entry["transactional"] = transactional
        entry["columns"] = list(columns) if columns is not None else None
        entry["at_least_once"] = not transactional

    def _seq(self, node: ir.Seq, entry: dict[str, Any]) -> None:
        entry["children"] = [self.node(step) for step in node.steps]

    def _join(self, node: ir.Join, entry: dict[str, Any]) -> None:
        entry["children"] = [self.node(branch) for branch in node.branches]

    def _race(self, node: ir.Race, entry: dict[str, Any]) -> None:
        entry["children"] = [self.node(branch) for branch in node.branches]

    def _if(self, node: ir.If, entry: dict[str, Any]) -> None:
        entry["condition"] = self.node(node.condition)
        entry["then"] = self.node(node.then)
        entry["else"] = self.node(node.otherwise) if node.otherwise is not None else None

    def _if_rows(self, node: ir.IfRows, entry: dict[str, Any]) -> None:
        entry["result_name"] = node.result_name.value
        entry["then"] = self.node(node.then)
        entry["else"] = self.node(node.otherwise) if node.otherwise is not None else None

    def _loop(self, node: ir.Loop, entry: dict[str, Any]) -> None:
        entry["body"] = self.node(node.body)
        entry["condition"] = self.node(node.condition) if node.condition is not None else None

    def _break(self, node: ir.Break, entry: dict[str, Any]) -> None:
        entry["value"] = self.text(node.value)

    def _sleep(self, node: ir.Sleep, entry: dict[str, Any]) -> None:
        entry["seconds"] = node.seconds

    def _wait_schedule(self, node: ir.WaitSchedule, entry: dict[str, Any]) -> None:
        entry["cron"] = node.cron.value
        entry["time_zone"] = node.time_zone.value if node.time_zone is not None else None

    def _wait_signal(self, node: ir.WaitSignal, entry: dict[str, Any]) -> None:
        entry["signal"] = node.signal.value
        entry["timeout_seconds"] = node.timeout_seconds

    def _http(self, node: ir.Http, entry: dict[str, Any]) -> None:
        entry["at_least_once"] = True  # a request cannot commit with the checkpoint
        entry["url"] = self.text(node.url)
        entry["method"] = http_method(node.method)
        entry["body"] = self.text(node.body)
        entry["headers"] = self.headers(node.headers)
        entry["timeout_seconds"] = node.timeout_seconds

    def _http_multipart(self, node: ir.HttpMultipart, entry: dict[str, Any]) -> None:
        entry["at_least_once"] = True
        entry["url"] = self.text(node.url)
        entry["method"] = http_method(node.method)
        parts = node.parts.value if node.parts is not None else []
        for part in parts if isinstance(parts, list) else ():
            for value in part.values() if isinstance(part, dict) else ():
                if isinstance(value, str):
                    self.variables.update(v.name for v in scan_text(value).variables)
        entry["parts"] = parts
        self.quick_hash = False  # JSON from the source: may hold any number
        entry["headers"] = self.headers(node.headers)
        entry["timeout_seconds"] = node.timeout_seconds

    def _retry(self, node: ir.Retry, entry: dict[str, Any]) -> None:
        entry["body"] = self.node(node.body)
        entry["max_attempts"] = node.max_attempts
        entry["initial_delay_seconds"] = self.number(node.initial_delay_seconds)
        entry["backoff_factor"] = self.number(node.backoff_factor)
        entry["max_delay_seconds"] = self.number(node.max_delay_seconds)

    def _timeout(self, node: ir.Timeout, entry: dict[str, Any]) -> None:
        entry["body"] = self.node(node.body)
        entry["seconds"] = self.number(node.seconds)

    def _undo(self, node: ir.Undo, entry: dict[str, Any]) -> None:
        entry["body"] = self.node(node.body)
        entry["undo"] = self.node(node.undo)

    def number(self, value: float) -> int | float:
        number = _number(value)
        if isinstance(number, float) and not orjson_spells_like_json(number):
            self.quick_hash = False
        return number

    def headers(self, headers: ir.Json | None) -> dict[str, str] | None:
        if headers is None or not isinstance(headers.value, dict):
            return None
        out: dict[str, str] = {}
        for key, value in headers.value.items():
            text = value if isinstance(value, str) else json.dumps(value)
            self.variables.update(v.name for v in scan_text(text).variables)
            out[str(key)] = text
        return out


# The kind of each node type, and its ``_<kind>`` method.
_WRITERS: dict[type[ir.Node], tuple[str, Callable[[_Emitter, Any, dict[str, Any]], None]]] = {
    cls: (cls.kind, getattr(_Emitter, f"_{cls.kind}")) for cls in ir.NODE_TYPES.values()
}


def http_method(method: ir.Text | None) -> str:
    """The request method as the runtime expects it: upper case, POST when not given."""
    return method.value.strip().upper() if method is not None else "POST"


def _number(value: float) -> int | float:
    """Whole numbers as integers, so ``1`` and ``1.0`` in the source give the same bytes."""
    return int(value) if float(value).is_integer() else value
