"""dfc: durable SQL workflows for PostgreSQL.

The command-line entry point lives in :mod:`dfc.cli`; each subcommand is a module of
:mod:`dfc.commands` that exposes ``register(subparsers)``.
"""

__version__ = "0.1.0"
