"""The dfc language server: protocol wiring between an editor and the feature modules.

This module only connects things. Document changes update :mod:`lsp.state` (debounced per
URI, then published as diagnostics with the document version); every request handler takes the
server as its first, typed argument, fetches the cached state of the document and calls one
pure function of a feature module. Whatever a feature raises is logged and answered with an
empty result, so a malformed document, a stale position or a bug in one feature never stops
the server.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from dfc import __version__
from lsp import (
    code_actions,
    completion,
    diagnostics,
    folding,
    formatting,
    hover,
    navigation,
    semantic_tokens,
    signature_help,
    symbols,
)
from lsp.schema import SchemaCache
from lsp.settings import Settings, parse_settings
from lsp.state import DocumentState, DocumentStore, filename_for

log = logging.getLogger("dfc.lsp")

REFRESH_SCHEMA = "dfc.refreshSchema"
F = TypeVar("F", bound=Callable[..., Any])


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


def guarded(default: Callable[[], object]) -> Callable[[F], F]:
    """Log what a handler raises and answer with ``default()`` instead of failing."""

    def wrap(handler: F) -> F:
        @functools.wraps(handler)
        def run(ls: DfcLanguageServer, params: Any) -> object:
            try:
                return handler(ls, params)
            except JsonRpcInvalidParams:
                raise
            except Exception as error:
                log.exception("%s failed", handler.__name__)
                ls.window_log_message(
                    lsp.LogMessageParams(
                        type=lsp.MessageType.Error,
                        message=f"dfc: {handler.__name__} failed: {type(error).__name__}: {error}",
                    )
                )
                return default()

        return cast(F, run)

    return wrap


def create_server() -> DfcLanguageServer:
    """A server with every feature registered."""
    server = DfcLanguageServer()

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: DfcLanguageServer, params: lsp.InitializeParams) -> None:
        options = params.initialization_options
        ls.initialization_options = options if isinstance(options, dict) else {}
        parsed = parse_settings(options)
        ls.settings = parsed.settings
        # The same choice pygls makes for the workspace, so both count columns alike.
        chosen = ServerCapabilitiesBuilder.choose_position_encoding(params.capabilities)
        ls.store.encoding = str(getattr(chosen, "value", chosen))
        ls.startup_problems = parsed.problems

    @server.feature(lsp.INITIALIZED)
    async def initialized(ls: DfcLanguageServer, params: lsp.InitializedParams) -> None:
        for problem in ls.startup_problems:
            ls.window_show_message(
                lsp.ShowMessageParams(type=lsp.MessageType.Warning, message=problem)
            )
        if ls.supports_configuration():
            await ls.pull_configuration()
        ls.refresh_schema_in_background()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: DfcLanguageServer, params: lsp.DidChangeConfigurationParams
    ) -> None:
        settings = params.settings
        if isinstance(settings, dict) and isinstance(settings.get("dfc"), dict):
            ls.apply_settings(settings["dfc"])
        elif isinstance(settings, dict) and settings:
            ls.apply_settings(settings)
        else:  # the pull model: the notification only says that something changed
            await ls.pull_configuration()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: DfcLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        try:
            ls.publish(params.text_document.uri)
        except Exception:
            log.exception("analysing %s failed", params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: DfcLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: DfcLanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: DfcLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        pending = ls._pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        ls.store.close(uri)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION,
        lsp.CompletionOptions(trigger_characters=completion.TRIGGER_CHARACTERS),
    )
    @guarded(lambda: lsp.CompletionList(is_incomplete=False, items=[]))
    def complete(ls: DfcLanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        state = ls.state(params.text_document.uri)
        if state is None:
            return lsp.CompletionList(is_incomplete=False, items=[])
        return completion.complete(
            state,
            params.position,
            schema=ls.schema_cache.schema,
            snippets=ls.snippets_supported(),
        )

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    @guarded(lambda: None)
    def on_hover(ls: DfcLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
        state = ls.state(params.text_document.uri)
        return (
            None if state is None else hover.hover(state, params.position, ls.schema_cache.schema)
        )

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    @guarded(list)
    def on_definition(ls: DfcLanguageServer, params: lsp.DefinitionParams) -> list[lsp.Location]:
        state = ls.state(params.text_document.uri)
        return [] if state is None else navigation.definition(state, params.position)

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    @guarded(list)
    def on_references(ls: DfcLanguageServer, params: lsp.ReferenceParams) -> list[lsp.Location]:
        state = ls.state(params.text_document.uri)
        if state is None:
            return []
        return navigation.references(state, params.position, params.context.include_declaration)

    @server.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
    @guarded(lambda: None)
    def on_prepare_rename(
        ls: DfcLanguageServer, params: lsp.PrepareRenameParams
    ) -> lsp.PrepareRenamePlaceholder | None:
        state = ls.state(params.text_document.uri)
        return None if state is None else navigation.prepare_rename(state, params.position)

    @server.feature(lsp.TEXT_DOCUMENT_RENAME, lsp.RenameOptions(prepare_provider=True))
    @guarded(lambda: None)
    def on_rename(ls: DfcLanguageServer, params: lsp.RenameParams) -> lsp.WorkspaceEdit | None:
        state = ls.state(params.text_document.uri)
        if state is None:
            return None
        try:
            return navigation.rename(state, params.position, params.new_name)
        except navigation.RenameError as error:
            raise JsonRpcInvalidParams(str(error)) from error

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded(list)
    def on_document_symbol(
        ls: DfcLanguageServer, params: lsp.DocumentSymbolParams
    ) -> list[lsp.DocumentSymbol]:
        state = ls.state(params.text_document.uri)
        return [] if state is None else symbols.document_symbols(state.analysis, state.lines)

    @server.feature(lsp.WORKSPACE_SYMBOL)
    @guarded(list)
    def on_workspace_symbol(
        ls: DfcLanguageServer, params: lsp.WorkspaceSymbolParams
    ) -> list[lsp.WorkspaceSymbol]:
        if not ls.settings.workspace_symbols:
            return []
        roots: list[Path] = []
        for folder in ls.workspace.folders.values():
            path = to_fs_path(folder.uri)
            if path:
                roots.append(Path(path))
        if not roots and ls.workspace.root_path:
            roots.append(Path(ls.workspace.root_path))
        open_documents = {}
        for uri in ls.store.uris():
            state = ls.state(uri)
            if state is not None:
                open_documents[uri] = (state.analysis, state.lines)
        return ls.workspace_index.search(
            params.query, roots, open_documents, lambda p: from_fs_path(str(p)) or str(p)
        )

    @server.feature(
        lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
        lsp.SemanticTokensRegistrationOptions(legend=semantic_tokens.LEGEND, full=True),
    )
    @guarded(lambda: lsp.SemanticTokens(data=[]))
    def on_semantic_tokens(
        ls: DfcLanguageServer, params: lsp.SemanticTokensParams
    ) -> lsp.SemanticTokens:
        state = ls.state(params.text_document.uri)
        if state is None:
            return lsp.SemanticTokens(data=[])
        return lsp.SemanticTokens(data=semantic_tokens.encode(state.analysis, state.lines))

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    @guarded(list)
    def on_formatting(
        ls: DfcLanguageServer, params: lsp.DocumentFormattingParams
    ) -> list[lsp.TextEdit]:
        state = ls.state(params.text_document.uri)
        if state is None:
            return []
        return formatting.format_document(state.text, filename_for(state.uri), state.lines)

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]),
    )
    @guarded(list)
    def on_code_action(ls: DfcLanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        state = ls.state(params.text_document.uri)
        if state is None:
            return []
        return code_actions.code_actions(state, params.range, list(params.context.diagnostics))

    @server.feature(
        lsp.TEXT_DOCUMENT_SIGNATURE_HELP,
        lsp.SignatureHelpOptions(trigger_characters=signature_help.TRIGGER_CHARACTERS),
    )
    @guarded(lambda: None)
    def on_signature_help(
        ls: DfcLanguageServer, params: lsp.SignatureHelpParams
    ) -> lsp.SignatureHelp | None:
        state = ls.state(params.text_document.uri)
        return None if state is None else signature_help.signature_help(state, params.position)

    @server.feature(lsp.TEXT_DOCUMENT_FOLDING_RANGE)
    @guarded(list)
    def on_folding_range(
        ls: DfcLanguageServer, params: lsp.FoldingRangeParams
    ) -> list[lsp.FoldingRange]:
        state = ls.state(params.text_document.uri)
        return [] if state is None else folding.folding_ranges(state.analysis, state.lines)

    @server.command(REFRESH_SCHEMA)
    async def refresh_schema(ls: DfcLanguageServer, *args: Any) -> str:
        """Read the database's tables and columns again (the ``dfc.refreshSchema`` command)."""
        ls._schema_requested_for = ls.settings.dsn
        status = await asyncio.get_running_loop().run_in_executor(
            None, ls.schema_cache.refresh, ls.settings.dsn
        )
        ls.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Info, message=status))
        return status

    return server
