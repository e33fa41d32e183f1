"""Helpers for end-to-end tests: open documents in a test client, edit them, await diagnostics."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.capabilities import ServerCapabilitiesBuilder
from pytest_lsp import LanguageClient

WORKSPACE = Path(__file__).resolve().parent / "workspace"
_counter = itertools.count()


def new_uri(stem: str = "doc") -> str:
    return (WORKSPACE / f"{stem}_{next(_counter)}.dsql").as_uri()


@dataclass
class Doc:
    """An open document of a test client, with helpers to edit it and wait for diagnostics."""

    client: LanguageClient
    uri: str
    text: str
    version: int = 1

    def pos(self, needle: str, delta: int = 0, occurrence: int = 0) -> lsp.Position:
        """The LSP position of the ``occurrence``-th ``needle`` plus ``delta`` characters."""
        index = -1
        for _ in range(occurrence + 1):
            index = self.text.index(needle, index + 1)
        offset = index + delta
        line = self.text.count("\n", 0, offset)
        start = self.text.rfind("\n", 0, offset) + 1
        prefix = self.text[start:offset]
        encoding = self.encoding()
        if encoding == "utf-8":
            column = len(prefix.encode("utf-8"))
        elif encoding == "utf-32":
            column = len(prefix)
        else:
            column = len(prefix.encode("utf-16-le")) // 2
        return lsp.Position(line=line, character=column)

    def encoding(self) -> str:
        """The position encoding the server negotiated with this client."""
        capabilities = self.client.capabilities or lsp.ClientCapabilities()
        chosen = ServerCapabilitiesBuilder.choose_position_encoding(capabilities)
        return str(getattr(chosen, "value", chosen))

    def ident(self) -> lsp.TextDocumentIdentifier:
        return lsp.TextDocumentIdentifier(uri=self.uri)

    def change(self, text: str) -> None:
        self.version += 1
        self.text = text
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(
                    uri=self.uri, version=self.version
                ),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def edit(self, start: lsp.Position, end: lsp.Position, new_text: str) -> None:
        """An incremental edit, as editors send them."""
        self.version += 1
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(
                    uri=self.uri, version=self.version
                ),
                content_changes=[
                    lsp.TextDocumentContentChangePartial(
                        range=lsp.Range(start=start, end=end), text=new_text
                    )
                ],
            )
        )

    async def diagnostics(
        self, until: Callable[[list[lsp.Diagnostic]], bool] | None = None, timeout: float = 60
    ) -> list[lsp.Diagnostic]:
        """The latest diagnostics for this document, waiting until ``until`` holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.client.diagnostics.get(self.uri)
            if found is not None and (until is None or until(list(found))):
                return list(found)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no matching diagnostics for {self.uri}: {found!r}")
            try:
                await asyncio.wait_for(
                    self.client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS),
                    remaining,
                )
            except TimeoutError:
                continue


async def open_doc(client: LanguageClient, text: str, stem: str = "doc", **kwargs: Any) -> Doc:
    uri = kwargs.get("uri") or new_uri(stem)
    client.diagnostics.pop(uri, None)
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="dsql", version=1, text=text)
        )
    )
    doc = Doc(client, uri, text)
    await doc.diagnostics()
    return doc
