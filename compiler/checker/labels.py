"""Workflow names (DFC511): two workflows of one file cannot have the same name.

The name is the ``df.start`` label, else derived from the file name; plans are stored and
started by name, so a second workflow with the same name would silently replace the first.
"""

from __future__ import annotations

from compiler import ir
from compiler.checker.context import CheckContext
from compiler.diagnostics import Related


def check(ctx: CheckContext) -> None:
    first: dict[str, ir.Workflow] = {}
    for workflow in ctx.workflows:
        earlier = first.get(workflow.name)
        if earlier is None:
            first[workflow.name] = workflow
            continue
        span = workflow.label.span if workflow.label is not None else workflow.span
        ctx.sink.add(
            "DFC511",
            span,
            f"a workflow named {workflow.name!r} is already defined in this file",
            hint="Give each workflow its own label: df.start(<workflow>, 'name').",
            related=(Related(earlier.span, "the first workflow with this name"),),
        )
