"""Pieces shared by the runtime's subcommands: the --dsn and worker options, error rendering."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from datetime import timedelta

import psycopg
from rich.console import Console

from runtime.http_client import HttpSettings
from runtime.ssrf import ALLOW_ENV, NetworkPolicy
from runtime.target import RuntimeProblem, database_problem

err = Console(stderr=True, highlight=False)


def add_dsn_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn",
        help="PostgreSQL connection string (default: DFC_DSN, DATABASE_URL, libpq PG* variables, "
             "else the embedded server)",
    )


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of an embedded or stand-alone worker (``dfc worker``, ``dfc run``)."""
    parser.add_argument(
        "--http-allow", metavar="LIST", default=None,
        help="networks and host names HTTP steps may reach although they are private, loopback "
             f"or link-local, comma-separated (default: {ALLOW_ENV}; e.g. 10.0.0.0/8,billing.internal)",
    )
    parser.add_argument(
        "--retention-days", type=float, default=30.0, metavar="DAYS",
        help="delete finished instances older than this (0 = keep forever; default 30)",
    )


def http_settings(args: argparse.Namespace) -> HttpSettings:
    """The HTTP settings of the worker options (raises RuntimeProblem on a bad allow-list)."""
    try:
        policy = (NetworkPolicy.from_env() if args.http_allow is None
                  else NetworkPolicy.parse(args.http_allow))
    except ValueError as exc:
        raise RuntimeProblem("DFC810", f"{exc}; use CIDR networks, addresses or host names") from exc
    return HttpSettings(network=policy)


def retention(args: argparse.Namespace) -> timedelta | None:
    days = float(args.retention_days)
    return None if days <= 0 else timedelta(days=days)


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
