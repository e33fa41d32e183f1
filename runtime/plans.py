"""Compiled plans: validation against ``compiler/plan.schema.json`` and a typed view for the worker.

A plan is the JSON document described in ``docs/plan-format.md``. The runtime refuses plans that
do not validate, and additionally checks what a JSON Schema cannot: every referenced node exists
and the nodes form one tree under ``root``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]


class PlanError(Exception):
    """A plan the runtime cannot run; the message says what is wrong and where."""


@cache
def _validator() -> jsonschema.protocols.Validator:
    # compiler/ is a sibling package, in a checkout and in an installed wheel alike
    path = Path(__file__).resolve().parent.parent / "compiler" / "plan.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


_CHILD_FIELDS = ("condition", "then", "else", "body", "undo")
# kinds whose fields of those names are data, not children (an HTTP request's body)
_LEAF_KINDS = frozenset({"sql", "sleep", "wait_schedule", "wait_signal", "http",
                         "http_multipart", "break"})


def child_ids(spec: dict[str, Any]) -> list[str]:
    """Ids of a node's children, in execution order."""
    if spec.get("kind") in _LEAF_KINDS:
        return []
    ids: list[str] = list(spec.get("children") or [])
    ids.extend(spec[key] for key in _CHILD_FIELDS if isinstance(spec.get(key), str))
    return ids


def validate(plan: Any) -> None:
    """Raise :class:`PlanError` unless ``plan`` is a runnable plan."""
    errors = sorted(_validator().iter_errors(plan), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise PlanError(f"plan does not match the plan schema at {where}: {first.message}")
    nodes = {node["id"]: node for node in plan["nodes"]}
    if len(nodes) != len(plan["nodes"]):
        raise PlanError("plan has two nodes with the same id")
    if plan["root"] not in nodes:
        raise PlanError(f"plan root {plan['root']} is not in the node table")
    parent: dict[str, str] = {}
    for node in plan["nodes"]:
        for child in child_ids(node):
            if child not in nodes:
                raise PlanError(f"node {node['id']} refers to missing node {child}")
            if child in parent or child == plan["root"]:
                raise PlanError(f"node {child} has more than one parent")
            parent[child] = node["id"]
    unreachable = set(nodes) - set(parent) - {plan["root"]}
    if unreachable:
        raise PlanError(f"nodes not reachable from the root: {', '.join(sorted(unreachable))}")


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    bind: str | None
    spec: dict[str, Any] = field(repr=False)

    @property
    def children(self) -> list[str]:
        return list(self.spec.get("children") or [])


@dataclass(frozen=True)
class Plan:
    id: int
    name: str
    version: int
    root: str
    nodes: dict[str, Node]
    defaults: dict[str, str]
    parents: dict[str, str] = field(default_factory=dict)  # child id -> parent id

    @classmethod
    def from_json(cls, plan_id: int, version: int, plan: dict[str, Any]) -> Plan:
        validate(plan)
        nodes = {
            spec["id"]: Node(spec["id"], spec["kind"], spec.get("bind"), spec)
            for spec in plan["nodes"]
        }
        return cls(
            id=plan_id,
            name=plan["name"],
            version=version,
            root=plan["root"],
            nodes=nodes,
            defaults=dict(plan["variables"]["defaults"]),
            parents={child: spec["id"] for spec in plan["nodes"] for child in child_ids(spec)},
        )
