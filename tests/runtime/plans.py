"""A small builder of schema-valid plans for runtime tests (the compiler's output format)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

_SPAN = {"line": 1, "column": 1, "end_line": 1, "end_column": 1}


class PlanBuilder:
    def __init__(self, name: str = "test", *, label: str | None = None) -> None:
        self.name = name
        self.label = label
        self.nodes: list[dict[str, Any]] = []
        self.defaults: dict[str, str] = {}

    def _add(self, kind: str, bind: str | None = None, **fields: Any) -> str:
        node_id = f"n{len(self.nodes)}"
        at_least_once = fields.get("transactional") is False
        self.nodes.append({"id": node_id, "kind": kind, "bind": bind,
                           "at_least_once": at_least_once, "span": dict(_SPAN), **fields})
        return node_id

    def sql(self, text: str, bind: str | None = None, *, transactional: bool = True) -> str:
        return self._add("sql", bind, sql=text, transactional=transactional, columns=None)

    def seq(self, *children: str, bind: str | None = None) -> str:
        return self._add("seq", bind, children=list(children))

    def join(self, *children: str, bind: str | None = None) -> str:
        return self._add("join", bind, children=list(children))

    def race(self, *children: str, bind: str | None = None) -> str:
        return self._add("race", bind, children=list(children))

    def if_(self, condition: str, then: str, else_: str | None = None,
            bind: str | None = None) -> str:
        return self._add("if", bind, condition=condition, then=then, **{"else": else_})

    def if_rows(self, result_name: str, then: str, else_: str | None = None,
                bind: str | None = None) -> str:
        return self._add("if_rows", bind, result_name=result_name, then=then, **{"else": else_})

    def loop(self, body: str, condition: str | None = None, bind: str | None = None) -> str:
        return self._add("loop", bind, body=body, condition=condition)

    def break_(self, value: str | None = None) -> str:
        return self._add("break", None, value=value)

    def sleep(self, seconds: int) -> str:
        return self._add("sleep", None, seconds=seconds)

    def wait_signal(self, name: str, timeout: int | None = None, bind: str | None = None) -> str:
        return self._add("wait_signal", bind, signal=name, timeout_seconds=timeout)

    def build(self, root: str) -> dict[str, Any]:
        used = sorted({v for n in self.nodes for v in _vars(n)} - {"sys_instance_id", "sys_label"})
        bindings: dict[str, list[str]] = {}
        for node in self.nodes:
            if node["bind"]:
                bindings.setdefault(node["bind"], []).append(node["id"])
        plan: dict[str, Any] = {
            "format": "dfc-plan", "format_version": 1, "name": self.name,
            "label": self.label, "database": None, "transaction_mode": "caller", "root": root,
            "variables": {"used": used, "defaults": dict(self.defaults)},
            "bindings": bindings, "source": {"file": "test.dsql", "line": 1, "column": 1},
            "nodes": self.nodes,
        }
        canonical = json.dumps(plan, sort_keys=True, separators=(",", ":"))
        plan["hash"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
        plan["compiler"] = "tests"
        return plan


def _vars(node: dict[str, Any]) -> list[str]:
    import re

    text = json.dumps(node)
    return re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", text)


def single(sql: str, name: str = "single") -> dict[str, Any]:
    builder = PlanBuilder(name)
    return builder.build(builder.sql(sql))


def chain(*statements: str, name: str = "chain") -> dict[str, Any]:
    builder = PlanBuilder(name)
    return builder.build(builder.seq(*[builder.sql(s) for s in statements]))
