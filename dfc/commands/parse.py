"""``dfc parse FILE``: show the typed IR of a .dsql file (as JSON, or a short text summary)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console

from compiler.api import front_end, ir_to_json, read_source
from compiler.render import print_diagnostics, to_json
from compiler.source import SourceFile


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "parse",
        help="print the IR of a .dsql file",
        description="Parse a .dsql file and print its typed IR.",
    )
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--format", choices=("json", "text"), default="json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    text, failure = read_source(args.file)
    console = Console(stderr=True, highlight=False)
    if failure is not None:
        print_diagnostics(console, [failure], None, args.file)
        return 1
    assert text is not None
    result = front_end(text, args.file)
    if args.format == "json":
        out = {
            "file": args.file,
            "statements": ir_to_json(result.program),
            "diagnostics": [to_json(d, args.file) for d in result.diagnostics],
        }
        json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for entry in ir_to_json(result.program):
            sys.stdout.write(json.dumps(entry, ensure_ascii=False) + "\n")
        print_diagnostics(console, result.diagnostics, SourceFile(args.file, text), args.file)
    return 1 if result.has_errors else 0
