"""``dfc fmt FILE…``: rewrite .dsql files in the canonical layout (``--check`` only reports).

Exit codes: 0 nothing to change (or files rewritten), 1 with ``--check`` when a file would
change or a file has syntax errors, 2 usage. ``-`` reads standard input and writes the result
to standard output.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from compiler.api import front_end, read_source
from compiler.formatter import format_text
from compiler.render import print_diagnostics
from compiler.source import SourceFile


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fmt",
        help="format .dsql files",
        description="Rewrite .dsql files in dfc's canonical layout (comments are kept).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="files to format; - for stdin")
    parser.add_argument(
        "--check", action="store_true", help="report files that would change; write nothing"
    )
    parser.add_argument(
        "--diff", action="store_true", help="print a unified diff instead of writing"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True, highlight=False)
    status = 0
    for name in args.files:
        if name == "-":
            text = sys.stdin.read()
        else:
            read, failure = read_source(name)
            if failure is not None:
                print_diagnostics(console, [failure], None, name)
                status = 1
                continue
            assert read is not None
            text = read
        formatted = format_text(text, name)
        if formatted == text and _has_syntax_errors(text, name):
            result = front_end(text, name)
            syntax = [d for d in result.diagnostics if d.code.startswith("DFC1")]
            print_diagnostics(console, syntax, SourceFile(name, text), name)
            console.print(f"{name}: not formatted (syntax errors)", style="bold red")
            status = 1
            continue
        if name == "-":
            sys.stdout.write(formatted)
            continue
        if formatted == text:
            continue
        if args.check or args.diff:
            if args.diff:
                sys.stdout.writelines(
                    difflib.unified_diff(
                        text.splitlines(keepends=True),
                        formatted.splitlines(keepends=True),
                        fromfile=name,
                        tofile=name,
                    )
                )
            console.print(f"would reformat {name}")
            status = 1
            continue
        Path(name).write_text(formatted, encoding="utf-8")
        console.print(f"reformatted {name}")
    return status


def _has_syntax_errors(text: str, name: str) -> bool:
    return any(d.code.startswith("DFC1") and d.is_error for d in front_end(text, name).diagnostics)
