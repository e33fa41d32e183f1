"""``dfc check FILE…``: report every problem in .dsql files; exit 1 when any is an error."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console

from compiler.api import check_text, read_source
from compiler.diagnostics import Severity
from compiler.render import print_diagnostics, summary, to_json
from compiler.source import SourceFile


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check .dsql files and report problems",
        description="Parse and check .dsql files; report every problem with file:line:col.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=False, highlight=False)
    all_json: list[dict[str, Any]] = []
    errors = warnings = 0
    for name in args.files:
        text, failure = read_source(name)
        if failure is not None:
            diagnostics = [failure]
            source = None
        else:
            assert text is not None
            result = check_text(text, name)
            diagnostics = result.diagnostics
            source = SourceFile(name, text)
        errors += sum(1 for d in diagnostics if d.severity is Severity.ERROR)
        warnings += sum(1 for d in diagnostics if d.severity is Severity.WARNING)
        if args.format == "json":
            all_json.extend(to_json(d, name) for d in diagnostics)
        else:
            print_diagnostics(console, diagnostics, source, name)
    if args.format == "json":
        json.dump(all_json, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        console.print(summary(errors, warnings, len(args.files)), style="bold" if errors else "dim")
    return 1 if errors else 0
