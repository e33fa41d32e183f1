"""Protocol handlers: each LSP method wired to one pure function of a feature module.

This module only connects things. Every handler takes the server as its first, typed
argument, fetches the cached state of the document (:meth:`DfcLanguageServer.state`) and calls
one function of a feature module. Whatever a feature raises is logged and answered with an
empty result, so a malformed document, a stale position or a bug in one feature never stops
the server.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from lsprotocol import types as lsp
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path, to_fs_path

from lsp import (
    code_actions,
    completion,
    folding,
    formatting,
    hover,
    navigation,
    semantic_tokens,
    signature_help,
    symbols,
)
from lsp.server import DfcLanguageServer
from lsp.settings import parse_settings
from lsp.state import filename_for

log = logging.getLogger("dfc.lsp")

REFRESH_SCHEMA = "dfc.refreshSchema"
F = TypeVar("F", bound=Callable[..., Any])


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
        ls.close(params.text_document.uri)

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
        status = await ls.refresh_schema()
        ls.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Info, message=status))
        return status

    return server
