"""``dfc compile FILE``: check a .dsql file and write one plan per workflow.

Plans go to ``<name>.plan.json`` in the ``-o`` directory, or to standard output with ``-o -``
(the default): one plan as a JSON object, several as a JSON array. ``--emit sql`` writes a
psql script that installs the plans instead; ``--target pg_durable`` writes the Durofut JSON
that pg_durable's own ``df.start`` accepts. Diagnostics go to standard error; the exit code is
1 when there is any error (and then nothing is written).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from compiler.api import compile_text, read_source
from compiler.emit import compiler_version, dumps
from compiler.optimizer.tree import show
from compiler.render import print_diagnostics, summary
from compiler.source import SourceFile


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compile",
        help="compile a .dsql file to plans",
        description="Check a .dsql file and write one plan per workflow.",
    )
    parser.add_argument("file", metavar="FILE")
    parser.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="OUT",
        help="directory for <name>.plan.json files, or - for standard output (default)",
    )
    parser.add_argument(
        "--emit",
        choices=("plan", "sql"),
        default="plan",
        help="plan: JSON plans; sql: a psql script that installs them",
    )
    parser.add_argument(
        "--target",
        choices=("dfc", "pg_durable"),
        default="dfc",
        help="dfc: plans for the dfc runtime; pg_durable: Durofut JSON for pg_durable's df.start",
    )
    parser.add_argument(
        "-O",
        dest="optimize",
        type=int,
        choices=(0, 1),
        default=1,
        help="-O0 turns the optimizer off",
    )
    parser.add_argument(
        "--explain-passes",
        action="store_true",
        help="show on standard error what each optimizer pass changed",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True, highlight=False)
    text, failure = read_source(args.file)
    if failure is not None:
        print_diagnostics(console, [failure], None, args.file)
        return 1
    assert text is not None
    result = compile_text(text, args.file, optimize=args.optimize > 0)
    diagnostics = list(result.diagnostics)
    outputs: list[tuple[str, str]] = []
    if not result.has_errors and args.target == "pg_durable":
        from compiler.durofut import to_durofut

        assert result.optimized is not None
        for workflow in result.optimized.workflows:
            durofut, problems = to_durofut(workflow, result.source)
            diagnostics.extend(problems)
            outputs.append((workflow.name, durofut))
    diagnostics.sort(key=lambda d: (d.span.start, d.span.end, d.code))
    print_diagnostics(console, diagnostics, SourceFile(args.file, text), args.file)
    errors = sum(1 for d in diagnostics if d.is_error)
    if errors:
        warnings = sum(1 for d in diagnostics if d.severity.value == "warning")
        console.print(summary(errors, warnings, 1), style="bold")
        return 1
    if args.explain_passes:
        _explain_passes(console, result.passes)
    if args.target == "pg_durable":
        return _write_durofut(args, outputs)
    return _write_plans(args, result.plans)


def _explain_passes(console: Console, passes: list[Any]) -> None:
    for record in passes:
        state = "changed" if record.changed else "no change"
        console.print(
            f"[bold]{record.workflow}[/bold]: {record.name}: {state} "
            f"({record.nodes_before} -> {record.nodes_after} nodes)",
            highlight=False,
        )
        if record.changed:
            console.print(
                f"    before: {show(record.before)}", highlight=False, markup=False, soft_wrap=True
            )
            console.print(
                f"    after:  {show(record.after)}", highlight=False, markup=False, soft_wrap=True
            )


def _dollar_quote(text: str, tag: str) -> str:
    candidate, n = f"${tag}$", 0
    while candidate in text:
        n += 1
        candidate = f"${tag}{n}$"
    return f"{candidate}{text}{candidate}"


def _write_plans(args: argparse.Namespace, plans: list[dict[str, Any]]) -> int:
    if args.emit == "sql":
        lines = [
            f"-- Plans compiled by {compiler_version()} from {args.file}.",
            "-- Install with: psql -v ON_ERROR_STOP=1 -f <this file>",
            "BEGIN;",
        ]
        for plan in plans:
            compact = json.dumps(plan, ensure_ascii=False, separators=(",", ":"))
            lines.append(f"SELECT df.install_plan({_dollar_quote(compact, 'plan')}::jsonb);")
        lines.append("COMMIT;")
        return _write(args, [("install", "\n".join(lines) + "\n")], ".sql")
    if args.output == "-":
        payload: Any = plans[0] if len(plans) == 1 else plans
        sys.stdout.write(dumps(payload))
        return 0
    return _write(args, [(plan["name"], dumps(plan)) for plan in plans], ".plan.json")


def _write_durofut(args: argparse.Namespace, outputs: list[tuple[str, str]]) -> int:
    if args.emit == "sql":
        lines = [f"-- Workflows compiled by {compiler_version()} from {args.file} for pg_durable."]
        for name, durofut in outputs:
            label = "'" + name.replace("'", "''") + "'"
            lines.append(f"SELECT df.start({_dollar_quote(durofut, 'durofut')}, {label});")
        return _write(args, [("start", "\n".join(lines) + "\n")], ".sql")
    return _write(args, [(name, text + "\n") for name, text in outputs], ".durofut.json")


def file_stem(name: str) -> str:
    """A workflow name made safe as a file name (labels may contain any character)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return stem or "workflow"


def _write(args: argparse.Namespace, files: list[tuple[str, str]], suffix: str) -> int:
    if args.output == "-":
        for _, content in files:
            sys.stdout.write(content)
        return 0
    directory = Path(args.output)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in files:
            (directory / f"{file_stem(name)}{suffix}").write_text(content, encoding="utf-8")
    except OSError as error:
        reason = error.strerror or str(error)
        Console(stderr=True, highlight=False).print(
            f"{directory}: error[DFC903]: cannot write plans here: {reason}",
            style="bold red",
            markup=False,
        )
        return 1
    return 0
