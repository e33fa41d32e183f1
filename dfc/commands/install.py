"""``dfc install FILE``: compile a .dsql file and install its plans (new versions on change)."""

from __future__ import annotations

import argparse
from typing import Any

from runtime import api
from runtime.commandline import add_dsn_argument, err, guarded, say
from runtime.migrate import install as install_schema
from runtime.sources import compile_file
from runtime.target import open_connection, resolve_dsn


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "install",
        help="compile a .dsql file and install its workflows",
        description="Compile FILE and install each workflow as a plan that df.start('<name>') "
        "starts. Re-installing a changed workflow makes a new version; running "
        "instances keep theirs.",
    )
    parser.add_argument("file", metavar="FILE")
    add_dsn_argument(parser)
    parser.set_defaults(func=run)


@guarded
def run(args: argparse.Namespace) -> int:
    plans = compile_file(args.file, err)
    dsn = resolve_dsn(args.dsn, say)
    with open_connection(dsn) as conn:
        install_schema(conn)
        with conn.transaction():
            for plan in plans:
                version = api.install(conn, plan)
                print(f"installed {plan['name']} (version {version})")
    return 0
