"""Diagnostics over stdio: every ``dfc check`` finding, per version, in the negotiated encoding."""

from __future__ import annotations

import copy
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_lsp
from lsp_e2e import WORKSPACE, open_doc
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from compiler.api import check_text

pytestmark = pytest.mark.asyncio(loop_scope="module")

BROKEN = """SELECT df.setvar('api', 'https://example.com');
SELECT df.start('SELECT 1 AS a' |=> 'a' ~> df.slep(5), 'one');
/* 😀 */ SELECT df.start('SELECT $a.x' ~> df.http('{apii}/x'), 'two');
"""


async def test_every_check_diagnostic_is_published(client: LanguageClient) -> None:
    doc = await open_doc(client, BROKEN)
    published = await doc.diagnostics()
    expected = check_text(BROKEN, "x.dsql").diagnostics
    assert [d.code for d in published] == [d.code for d in expected]
    assert all(d.source == "dfc" for d in published)
    unknown = next(d for d in published if d.code == "DFC201")
    assert unknown.severity == lsp.DiagnosticSeverity.Error
    assert unknown.range.start == doc.pos("df.slep")


async def test_columns_count_utf16_code_units(client: LanguageClient) -> None:
    doc = await open_doc(client, BROKEN)
    published = await doc.diagnostics()
    undeclared = next(d for d in published if d.code == "DFC510")
    # The emoji before it is one character but two UTF-16 code units (four UTF-8 ones).
    assert undeclared.range.start == doc.pos("{apii}")
    extra = {"utf-16": 1, "utf-8": 3, "utf-32": 0}[doc.encoding()]
    assert undeclared.range.start.character == BROKEN.splitlines()[2].index("{apii}") + extra
    assert "Did you mean {api}?" in undeclared.message  # the hint travels in the message


async def test_edits_republish_and_fixing_clears(client: LanguageClient) -> None:
    doc = await open_doc(client, "SELECT df.start('SELECT 1' ~> df.sleep(1), 'w');\n")
    assert await doc.diagnostics() == []
    doc.edit(doc.pos("df.sleep", 3), doc.pos("df.sleep", 8), "nap")
    after = await doc.diagnostics(lambda ds: any(d.code == "DFC201" for d in ds))
    assert after[0].range.start == doc.pos("df.sleep")
    doc.edit(doc.pos("df.sleep", 3), doc.pos("df.sleep", 6), "sleep")
    assert await doc.diagnostics(lambda ds: ds == []) == []


async def test_uris_with_escaped_characters(client: LanguageClient) -> None:
    uri = (WORKSPACE / "my flow ü.dsql").as_uri()
    assert "%20" in uri
    text = "SELECT df.start('SELECT 1', 'w');\nSELECT df.start(df.slep(1), 'v');\n"
    doc = await open_doc(client, text, uri=uri)
    published = await doc.diagnostics()
    assert [d.code for d in published] == ["DFC201"]
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(doc.ident())
    )
    assert symbols is not None and [s.name for s in symbols] == ["w"]


async def test_garbage_and_stale_requests_do_not_break_the_server(client: LanguageClient) -> None:
    doc = await open_doc(client, "\x00\ufffd'unterminated $$ /* (((")
    published = await doc.diagnostics()
    assert published and all(d.source == "dfc" for d in published)
    # Positions far outside the document, and a document nobody opened.
    far = lsp.Position(line=999, character=999)
    await client.text_document_hover_async(lsp.HoverParams(doc.ident(), far))
    await client.text_document_completion_async(lsp.CompletionParams(doc.ident(), far))
    missing = lsp.TextDocumentIdentifier(uri="file:///nowhere/missing.dsql")
    result = await client.text_document_definition_async(
        lsp.DefinitionParams(missing, lsp.Position(line=0, character=0))
    )
    assert not result
    # Still alive and correct.
    fine = await open_doc(client, "SELECT df.start('SELECT 1', 'ok');")
    assert await fine.diagnostics() == []


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "dfc", "lsp"]),
    scope="module",
)
async def utf8_client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    capabilities = copy.deepcopy(client_capabilities("neovim"))  # the recorded set is shared
    capabilities.general = lsp.GeneralClientCapabilities(
        position_encodings=[lsp.PositionEncodingKind.Utf8, lsp.PositionEncodingKind.Utf16]
    )
    result = await lsp_client.initialize_session(
        lsp.InitializeParams(capabilities=capabilities, initialization_options={"debounceMs": 0})
    )
    assert result.capabilities.position_encoding == lsp.PositionEncodingKind.Utf8
    yield
    await lsp_client.shutdown_session()


async def test_utf8_position_encoding_when_the_client_prefers_it(
    utf8_client: LanguageClient,
) -> None:
    doc = await open_doc(utf8_client, BROKEN)
    published = await doc.diagnostics()
    undeclared = next(d for d in published if d.code == "DFC510")
    line = BROKEN.splitlines()[2]
    assert undeclared.range.start.character == len(line[: line.index("{apii}")].encode("utf-8"))
