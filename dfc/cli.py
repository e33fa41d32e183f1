"""The ``dfc`` command line: discovers subcommands and maps outcomes to exit codes.

Exit codes are shared by every subcommand: 0 success, 1 the input has errors (or a workflow
failed), 2 usage errors. A subcommand module in :mod:`dfc.commands` exposes
``register(subparsers)`` and sets ``func`` on its parser; ``func(args)`` returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from dfc import __version__, commands

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dfc",
        description="Durable SQL workflows for PostgreSQL: compile .dsql files and run them.",
    )
    parser.add_argument("--version", action="version", version=f"dfc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
