"""``dfc status|list|result|signal|cancel``: look at and steer workflow instances.

``dfc explain`` (:mod:`dfc.commands.explain`) calls :func:`run_explain` for instance ids and
plan names.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from runtime import api
from runtime.commandline import add_dsn_argument, guarded, say
from runtime.jsonvalues import dumps, loads
from runtime.target import RuntimeProblem, open_connection, require_schema, resolve_dsn

out = Console(highlight=False)


def register(subparsers: Any) -> None:
    status = subparsers.add_parser("status", help="show the status of an instance")
    status.add_argument("instance", metavar="ID")
    add_dsn_argument(status)
    status.set_defaults(func=run_status)

    listing = subparsers.add_parser("list", help="list instances, newest first")
    listing.add_argument(
        "--status", choices=("pending", "running", "completed", "failed", "cancelled")
    )
    listing.add_argument("--label")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--after", metavar="CURSOR", help="next_cursor of the previous page")
    add_dsn_argument(listing)
    listing.set_defaults(func=run_list)


    result = subparsers.add_parser("result", help="print an instance's result (JSON)")
    result.add_argument("instance", metavar="ID")
    add_dsn_argument(result)
    result.set_defaults(func=run_result)

    send = subparsers.add_parser("signal", help="send a signal to an instance (df.signal)")
    send.add_argument("instance", metavar="ID")
    send.add_argument("name", metavar="NAME")
    send.add_argument("data", metavar="DATA", nargs="?", default="{}",
                      help="payload: JSON, or text taken as a JSON string (default {})")
    add_dsn_argument(send)
    send.set_defaults(func=run_signal)

    cancel = subparsers.add_parser("cancel", help="cancel an instance, its running statements "
                                                  "included (df.cancel)")
    cancel.add_argument("instance", metavar="ID")
    cancel.add_argument("--reason", default="Cancelled by user")
    add_dsn_argument(cancel)
    cancel.set_defaults(func=run_cancel)


def _connection(args: argparse.Namespace) -> Any:
    conn = open_connection(resolve_dsn(args.dsn, say))
    require_schema(conn)
    return conn


def _known(found: tuple[str, str | None] | None, instance: str) -> tuple[str, str | None]:
    if found is None:
        raise RuntimeProblem("DFC808", f"no instance {instance} (or it belongs to another role)")
    return found


@guarded
def run_status(args: argparse.Namespace) -> int:
    with _connection(args) as conn:
        status, output = _known(api.output(conn, args.instance), args.instance)
    print(status)
    if status == "failed" and output:
        print(output)
    return 0


@guarded
def run_list(args: argparse.Namespace) -> int:
    with _connection(args) as conn:
        rows = api.list_instances(
            conn, status=args.status, limit=args.limit, label=args.label, cursor=args.after
        )
    table = Table("id", "label", "workflow", "status", "created", "output")
    for row in rows:
        output = (row.output or "").replace("\n", " ")
        table.add_row(
            row.instance_id,
            row.label or "",
            row.function_name,
            row.status,
            row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            output[:60] + ("…" if len(output) > 60 else ""),
        )
    out.print(table)
    if rows and rows[-1].next_cursor:
        out.print(f"more: dfc list --after {rows[-1].next_cursor}")
    return 0


@guarded
def run_explain(args: argparse.Namespace) -> int:
    with _connection(args) as conn:
        print(api.explain(conn, args.target))
    return 0


@guarded
def run_result(args: argparse.Namespace) -> int:
    with _connection(args) as conn:
        status, output = _known(api.output(conn, args.instance), args.instance)
        if status != "completed":
            raise RuntimeProblem(
                "DFC809",
                f"instance {args.instance} is {status}"
                + (f": {output}" if status == "failed" and output else ""),
            )
        print(dumps(api.result(conn, args.instance)))
    return 0


@guarded
def run_signal(args: argparse.Namespace) -> int:
    try:
        data = loads(args.data)
    except ValueError:
        data = args.data  # plain text is sent as a JSON string, as df.signal does
    with _connection(args) as conn:
        api.signal(conn, args.instance, args.name, data)
    say("OK")
    return 0


@guarded
def run_cancel(args: argparse.Namespace) -> int:
    with _connection(args) as conn:
        say(api.cancel(conn, args.instance, args.reason))
    return 0
