"""Subcommands of ``dfc``: one module each, discovered by :func:`dfc.cli.build_parser`."""
