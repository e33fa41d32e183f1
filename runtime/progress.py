"""Live progress of instances for ``dfc run``: a tree of steps with markers and elapsed times."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from runtime.api import NodeProgress
from runtime.plans import child_ids

MARKERS = {
    "completed": ("✓", "green"), "failed": ("✗", "red"), "running": ("⏳", "yellow"),
    "pending": ("○", "dim"), "skipped": ("⊘", "dim"),
}


def _label(spec: dict[str, Any]) -> str:
    kind = spec["kind"]
    if kind == "sql":
        first = " ".join(spec["sql"].split())
        text = f"SQL {first[:70]}{'…' if len(first) > 70 else ''}"
    elif kind == "sleep":
        text = f"sleep {spec['seconds']}s"
    elif kind == "wait_signal":
        text = f"wait for signal '{spec['signal']}'"
    elif kind == "loop":
        text = "loop (while)" if spec.get("condition") else "loop"
    elif kind == "break":
        text = "break" if spec.get("value") is None else f"break {spec['value']}"
    else:
        text = kind
    return text + (f" |=> '{spec['bind']}'" if spec.get("bind") else "")


def _line(spec: dict[str, Any], state: NodeProgress | None) -> Text:
    status = state.status if state else "pending"
    marker, style = MARKERS.get(status, ("?", ""))
    line = Text(f"{marker} ", style=style)
    line.append(_label(spec))
    # a pending node with a start ran in an earlier loop iteration: its time is not this one's
    if state is not None and state.elapsed is not None and status not in ("skipped", "pending"):
        line.append(f"  {state.elapsed:.2f}s", style="dim")
    if state is not None and state.runs > 1:
        line.append(f"  ×{state.runs}", style="dim")
    return line


def render(plan: dict[str, Any], instance_id: str, status: str,
           states: dict[str, NodeProgress]) -> RenderableType:
    nodes = {spec["id"]: spec for spec in plan["nodes"]}
    marker, style = MARKERS.get(status, ("⏳", "yellow"))
    tree = Tree(Text(f"{marker} {plan['name']} ({instance_id}) {status}", style=style))

    def add(parent: Tree, node_id: str) -> None:
        spec = nodes[node_id]
        branch = parent.add(_line(spec, states.get(node_id)))
        for child in child_ids(spec):
            add(branch, child)

    add(tree, plan["root"])
    return tree


def render_all(items: list[RenderableType]) -> RenderableType:
    return Group(*items)
