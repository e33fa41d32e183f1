"""The dfc language server (``dfc lsp``): diagnostics, completion and navigation for .dsql files.

Run it as ``dfc lsp`` (stdio, what editors use) or ``dfc lsp --tcp 127.0.0.1:2087`` (one
client over TCP, for debugging). Settings arrive as ``initializationOptions`` or through
``workspace/configuration`` (section ``dfc``): ``dsn`` (a PostgreSQL connection string for
table and column completion; ``DFC_DSN`` is the fallback), ``debounceMs`` (delay between an
edit and its diagnostics, default 20) and ``workspaceSymbols``. The command
``dfc.refreshSchema`` reads the database schema again.

Layout: :mod:`lsp.handlers` wires the protocol to one module per feature (``completion``,
``hover``, ``navigation``, ``symbols``, ``semantic_tokens``, ``formatting``, ``code_actions``,
``signature_help``, ``folding``, ``diagnostics``); :mod:`lsp.server` is the server object and
its state; :mod:`lsp.state` caches derived state per document version; :mod:`lsp.analysis` analyses documents statement by statement;
:mod:`lsp.lexing`, :mod:`lsp.context`, :mod:`lsp.names` and :mod:`lsp.positions` hold the
facts the features share.
"""
