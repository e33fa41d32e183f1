"""The dfc language server object: the state it keeps and how it publishes diagnostics.

:class:`DfcLanguageServer` owns the document store (:mod:`lsp.state`), the settings, the
database schema cache and the workspace symbol index. Document changes are analysed after a
per-URI debounce delay and published as diagnostics with the document version; requests read
the state of the current version through :meth:`DfcLanguageServer.state`. The protocol
handlers live in :mod:`lsp.handlers`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from dfc import __version__
from lsp import diagnostics, symbols
from lsp.schema import SchemaCache
from lsp.settings import Settings, parse_settings
from lsp.state import DocumentState, DocumentStore

log = logging.getLogger("dfc.lsp")


class DfcLanguageServer(LanguageServer):
    """The server and everything it caches; handlers receive it as their first argument."""

    def __init__(self) -> None:
        super().__init__(
            "dfc", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental
        )
        self.store = DocumentStore()
        self.settings = Settings()
        self.schema_cache = SchemaCache()
        self.workspace_index = symbols.WorkspaceIndex(self.store.cache)
        self._pending: dict[str, asyncio.Task[None]] = {}
        self.startup_problems: list[str] = []
        self.initialization_options: dict[str, Any] = {}
        self._schema_requested_for: str | None = None

    # -- state --------------------------------------------------------------------------------

    def state(self, uri: str) -> DocumentState | None:
        """The analysed state of the document's current version (analysed now if pending).

        Only open documents have a state: a request about any other URI gets an empty answer.
        """
        documents = self.workspace.text_documents
        document = documents.get(uri) or documents.get(unquote(uri))  # pygls keys are unquoted
        if document is None:
            return None
        current = self.store.get(uri)
        if current is not None and current.version == document.version:
            return current
        return self.store.update(uri, document.version, document.source)

    def publish(self, uri: str) -> None:
        state = self.state(uri)
        if state is None:
            return
        items = diagnostics.publishable(state.analysis, state.lines, uri)
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=items, version=state.version)
        )

    def schedule(self, uri: str) -> None:
        """Analyse and publish ``uri`` after the debounce delay, replacing an earlier request."""
        pending = self._pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        delay = self.settings.debounce_ms / 1000

        async def run() -> None:
            try:
                if delay:
                    await asyncio.sleep(delay)
                self.publish(uri)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("analysing %s failed", uri)
            finally:
                if self._pending.get(uri) is task:
                    del self._pending[uri]

        task = asyncio.get_running_loop().create_task(run())
        self._pending[uri] = task

    def close(self, uri: str) -> None:
        """Forget a closed document and clear its diagnostics."""
        pending = self._pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        self.store.close(uri)
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    async def refresh_schema(self) -> str:
        """Read the configured database's schema now (in a worker thread); a status line."""
        self._schema_requested_for = self.settings.dsn
        return await asyncio.get_running_loop().run_in_executor(
            None, self.schema_cache.refresh, self.settings.dsn
        )

    def apply_settings(self, raw: Any) -> None:
        """Take settings from the client (initialization options merged with configuration)."""
        merged: dict[str, Any] = dict(self.initialization_options)
        if isinstance(raw, dict):
            merged.update(raw)
        elif raw is not None:
            merged = raw  # not an object: parse_settings says so and falls back to defaults
        parsed = parse_settings(merged)
        old_dsn = self.settings.dsn
        self.settings = parsed.settings
        for problem in parsed.problems:
            self.window_show_message(
                lsp.ShowMessageParams(type=lsp.MessageType.Warning, message=problem)
            )
        if self.settings.dsn != old_dsn:
            self.refresh_schema_in_background()

    def supports_configuration(self) -> bool:
        workspace = self.client_capabilities.workspace
        return bool(workspace is not None and workspace.configuration)

    async def pull_configuration(self) -> None:
        """Ask the client for the ``dfc`` configuration section and apply it."""
        if not self.supports_configuration():
            return
        try:
            answer = await self.workspace_configuration_async(
                lsp.ConfigurationParams(items=[lsp.ConfigurationItem(section="dfc")])
            )
        except Exception as error:  # a client that announces but fails the request
            log.warning("workspace/configuration failed: %s", error)
            return
        section = answer[0] if answer else None
        if isinstance(section, dict) and section:
            self.apply_settings(section)

    def refresh_schema_in_background(self) -> None:
        """Read the configured database's schema in a worker thread, once per DSN."""
        dsn = self.settings.dsn
        if dsn == self._schema_requested_for:
            return
        self._schema_requested_for = dsn
        if not dsn:
            self.schema_cache.refresh(None)
            return

        async def run() -> None:
            status = await asyncio.get_running_loop().run_in_executor(
                None, self.schema_cache.refresh, dsn
            )
            level = lsp.MessageType.Warning if self.schema_cache.error else lsp.MessageType.Info
            self.window_log_message(lsp.LogMessageParams(type=level, message=status))
            if self.schema_cache.error:
                self.window_show_message(lsp.ShowMessageParams(type=level, message=status))

        try:
            asyncio.get_running_loop().create_task(run())
        except RuntimeError:  # no loop yet (unit tests): read it now
            self.schema_cache.refresh(dsn)

    def snippets_supported(self) -> bool:
        try:
            item = self.client_capabilities.text_document.completion.completion_item  # type: ignore[union-attr]
            return bool(item.snippet_support)  # type: ignore[union-attr]
        except AttributeError:
            return False
