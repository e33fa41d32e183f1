"""Pieces shared by the runtime's subcommands: the --dsn option and error rendering."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

import psycopg
from rich.console import Console

from runtime.target import RuntimeProblem, database_problem

err = Console(stderr=True, highlight=False)


def add_dsn_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn",
        help="PostgreSQL connection string (default: DFC_DSN, DATABASE_URL, libpq PG* variables, "
             "else the embedded server)",
    )


def say(message: str) -> None:
    err.print(f"[dim]{message}[/dim]")


def guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Render runtime problems and database errors as messages (exit 1), never tracebacks."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except RuntimeProblem as problem:
            err.print(f"[bold red]error[/bold red] {problem}", markup=True)
            return 1
        except psycopg.Error as exc:
            err.print(f"[bold red]error[/bold red] {database_problem(exc)}", markup=True)
            return 1
        except BrokenPipeError:
            sys.stderr.close()
            return 0

    return wrapper
