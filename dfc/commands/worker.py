"""``dfc worker``: execute workflows until SIGTERM (any number of workers, anywhere)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from runtime.commandline import (
    add_dsn_argument,
    add_worker_arguments,
    guarded,
    http_settings,
    retention,
    say,
)
from runtime.target import open_connection, require_current_schema, resolve_dsn
from runtime.worker import Worker, WorkerOptions


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a worker that executes workflow steps",
        description="Claim and execute workflow steps until SIGTERM or Ctrl-C; in-flight steps "
        "finish first.",
    )
    add_dsn_argument(parser)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        metavar="N",
        help="steps executed in parallel (one connection each; default 4)",
    )
    parser.add_argument(
        "--statement-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="statement_timeout of each SQL step (0 = none; default 300)",
    )
    add_worker_arguments(parser)
    parser.set_defaults(func=run)


@guarded
def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    dsn = resolve_dsn(args.dsn, say)
    with open_connection(dsn) as conn:
        require_current_schema(conn, say)
    options = WorkerOptions(
        concurrency=max(1, args.concurrency),
        statement_timeout_ms=int(args.statement_timeout * 1000),
        http=http_settings(args),
        retention=retention(args),
    )
    say(f"worker started ({options.concurrency} executors); stop with SIGTERM or Ctrl-C")
    Worker(dsn, options).run()
    say("worker stopped")
    return 0
