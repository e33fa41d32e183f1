"""``dfc lsp``: run the language server over stdio (or TCP, for debugging)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lsp",
        help="run the dfc language server (for editors)",
        description="Run the dfc language server. Editors start it over stdio; --tcp serves "
        "one client on HOST:PORT, which helps when debugging the server.",
    )
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    parser.add_argument(
        "--log-level",
        choices=("error", "warning", "info", "debug"),
        default="warning",
        help="what to log on stderr (default: warning)",
    )
    parser.set_defaults(func=run)


def _address(value: str) -> tuple[str, int] | None:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    address = None
    if args.tcp is not None:
        address = _address(args.tcp)
        if address is None:
            print(
                f"dfc lsp: --tcp needs HOST:PORT, e.g. 127.0.0.1:2087 (got {args.tcp!r})",
                file=sys.stderr,
            )
            return 2
    from lsp.handlers import create_server

    server = create_server()
    if address is not None:
        server.start_tcp(*address)
    else:
        server.start_io()
    return 0
