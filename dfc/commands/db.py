"""``dfc db init``: install or upgrade the df schema (idempotent)."""

from __future__ import annotations

import argparse
from typing import Any

from runtime.commandline import add_dsn_argument, guarded, say
from runtime.migrate import install, newer_schema_note
from runtime.target import open_connection, resolve_dsn


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help="manage the df schema in a database")
    commands = parser.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    init = commands.add_parser(
        "init",
        help="install or upgrade the df schema",
        description="Install the df schema, or apply pending migrations.",
    )
    add_dsn_argument(init)
    init.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="ROLE",
        help="also grant df usage to ROLE (repeatable)",
    )
    init.set_defaults(func=run_init)


@guarded
def run_init(args: argparse.Namespace) -> int:
    dsn = resolve_dsn(args.dsn, say)
    with open_connection(dsn) as conn:
        report = install(conn)
        for role in args.grant:
            from runtime.queries import query

            conn.execute(query("grant_usage"), {"role": role})
    if report.fresh:
        print(f"installed the df schema (version {report.version})")
    elif report.applied:
        print(
            f"upgraded the df schema to version {report.version} "
            f"(applied {', '.join(f'{v:04d}' for v in report.applied)})"
        )
    else:
        print(f"the df schema is up to date (version {report.version})")
    if report.unknown:
        say(newer_schema_note(report.unknown))
    return 0
