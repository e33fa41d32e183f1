"""``dfc explain FILE``: show each workflow of a .dsql file as a tree (text or JSON).

``dfc explain`` also explains running instances and installed plans (``ID|PLAN``, from
:mod:`dfc.commands.instances`, which needs a database). One command serves both: a target that
is an existing file or ends in ``.dsql`` is compiled and shown here, anything else goes to the
instance explainer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from compiler.api import compile_text, read_source
from compiler.explain import dumps, explain_json, explain_text
from compiler.render import print_diagnostics
from compiler.source import SourceFile


def _instance_explainer() -> Any:
    try:
        from dfc.commands import instances
    except ImportError:  # pragma: no cover - the runtime is optional for compiling
        return None
    return instances


def register(subparsers: Any) -> None:
    instances = _instance_explainer()
    parser = subparsers.add_parser(
        "explain",
        help="show the workflows of a .dsql file (or an instance) as trees",
        description="Show each workflow of a .dsql file as a tree, like df.explain; "
        "given an instance id or plan name, show that instance's tree with live markers.",
    )
    parser.add_argument("file", metavar="FILE|ID|PLAN")
    if instances is not None:
        from runtime.commandline import add_dsn_argument

        add_dsn_argument(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--workflow", metavar="NAME", help="only the workflow with this name")
    parser.add_argument(
        "-O",
        dest="optimize",
        type=int,
        choices=(0, 1),
        default=1,
        help="-O0 shows the workflow as written, -O1 (default) as it will run",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    instances = _instance_explainer()
    if not path.exists() and not args.file.endswith(".dsql") and instances is not None:
        args.target = args.file
        code: int = instances.run_explain(args)
        return code
    return run_file(args)


def run_file(args: argparse.Namespace) -> int:
    console = Console(stderr=True, highlight=False)
    text, failure = read_source(args.file)
    if failure is not None:
        print_diagnostics(console, [failure], None, args.file)
        return 1
    assert text is not None
    result = compile_text(text, args.file, optimize=args.optimize > 0)
    print_diagnostics(console, result.diagnostics, SourceFile(args.file, text), args.file)
    if result.has_errors or result.optimized is None:
        return 1
    workflows = [w for w in result.optimized.workflows if args.workflow in (None, w.name)]
    if args.workflow is not None and not workflows:
        names = ", ".join(w.name for w in result.optimized.workflows) or "none"
        console.print(f"no workflow named {args.workflow!r} in {args.file} (workflows: {names})")
        return 1
    if args.format == "json":
        sys.stdout.write(dumps([explain_json(w) for w in workflows]))
        return 0
    blocks = []
    for workflow in workflows:
        header = f"Workflow: {workflow.name}\n\n" if len(workflows) > 1 else ""
        blocks.append(header + explain_text(workflow))
    sys.stdout.write("\n\n".join(blocks) + "\n")
    return 0
