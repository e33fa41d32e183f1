"""``dfc run FILE``: compile, install, start and execute workflows with an in-process worker.

Shows a live tree of steps, prints each result, and exits 0 when every workflow completed,
1 otherwise. Other workers (``dfc worker``) on the same database may pick up steps too.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.console import Console
from rich.live import Live

from runtime import api
from runtime.commandline import (
    add_dsn_argument,
    add_worker_arguments,
    err,
    guarded,
    http_settings,
    retention,
    say,
)
from runtime.jsonvalues import dumps
from runtime.migrate import install as install_schema
from runtime.progress import render, render_all
from runtime.sources import compile_file
from runtime.target import open_connection, resolve_dsn
from runtime.worker import Worker, WorkerOptions

out = Console(highlight=False)
TERMINAL = ("completed", "failed", "cancelled")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="compile and run a .dsql file, showing live progress",
        description="Compile FILE, install its workflows, start them, execute them with an "
        "in-process worker and print their results.",
    )
    parser.add_argument("file", metavar="FILE")
    add_dsn_argument(parser)
    parser.add_argument("--concurrency", type=int, default=4, metavar="N")
    parser.add_argument("--no-progress", action="store_true", help="print only the results")
    add_worker_arguments(parser)
    parser.set_defaults(func=run)


@guarded
def run(args: argparse.Namespace) -> int:
    plans = compile_file(args.file, err)
    dsn = resolve_dsn(args.dsn, say)
    with open_connection(dsn) as conn:
        install_schema(conn)
        started: list[tuple[dict[str, Any], str]] = []
        with conn.transaction():
            for plan in plans:
                api.install(conn, plan)
                started.append((plan, api.start(conn, plan)))
        worker = Worker(dsn, WorkerOptions(concurrency=max(1, args.concurrency),
                                           http=http_settings(args), retention=retention(args)))
        worker.start()
        try:
            statuses = _follow(conn, started, show=not args.no_progress)
        finally:
            worker.stop()
            worker.join(30)
        failed = False
        for plan, instance in started:
            status, output = api.output(conn, instance) or ("unknown", None)
            if status == "completed":
                out.print(f"[bold]{plan['name']}[/bold] ({instance}) completed:")
                print(dumps(api.result(conn, instance)))
            else:
                failed = True
                out.print(
                    f"[bold red]{plan['name']}[/bold red] ({instance}) {status}: {output or ''}"
                )
        del statuses
    return 1 if failed else 0


def _follow(conn: Any, started: list[tuple[dict[str, Any], str]], show: bool) -> dict[str, str]:
    def snapshot() -> tuple[dict[str, str], Any]:
        statuses: dict[str, str] = {}
        trees = []
        for plan, instance in started:
            status = api.status(conn, instance) or "unknown"
            statuses[instance] = status
            if show:
                trees.append(render(plan, instance, status, api.progress(conn, instance)))
        return statuses, render_all(trees)

    statuses, view = snapshot()
    with (
        Live(view, console=out, refresh_per_second=8, transient=False) if show else _Null() as live
    ):
        pause = 0.005  # short workflows end within milliseconds: look again soon, then less often
        while not all(s in TERMINAL for s in statuses.values()):
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
            statuses, view = snapshot()
            if show:
                live.update(view)
    if show:
        out.print()
    return statuses


class _Null:
    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, view: Any) -> None:
        return None
