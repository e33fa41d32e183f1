"""Settings: typed, defaulted on bad input with a visible message; UTF-16 positions."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from lsp.positions import LineIndex
from lsp.settings import DEFAULT_DEBOUNCE_MS, Settings, parse_settings


@pytest.mark.parametrize(
    "raw",
    [
        {"dsn": "postgresql:///app", "debounceMs": 5},
        {"dfc": {"dsn": "postgresql:///app", "debounce_ms": 5}},
        {"dfc.dsn": "postgresql:///app", "dfc.debounceMs": 5},
    ],
)
def test_accepted_shapes(raw: object) -> None:
    parsed = parse_settings(raw, environ={})
    assert parsed.problems == []
    assert parsed.settings == Settings(dsn="postgresql:///app", debounce_ms=5)


def test_bad_values_fall_back_to_defaults_with_messages() -> None:
    parsed = parse_settings(
        {"dsn": 42, "debounceMs": "fast", "workspaceSymbols": "yes"}, environ={}
    )
    assert parsed.settings == Settings()
    assert len(parsed.problems) == 3
    assert all(p.startswith("dfc.") for p in parsed.problems)
    assert parse_settings(["not", "an", "object"], environ={}).problems


def test_environment_supplies_the_dsn() -> None:
    assert (
        parse_settings(None, environ={"DFC_DSN": "postgresql:///env"}).settings.dsn
        == "postgresql:///env"
    )
    given = parse_settings({"dsn": "postgresql:///given"}, environ={"DFC_DSN": "postgresql:///env"})
    assert given.settings.dsn == "postgresql:///given"
    assert parse_settings({}, environ={}).settings.debounce_ms == DEFAULT_DEBOUNCE_MS


def test_positions_are_utf16() -> None:
    text = "a😀b\n€x\n"
    index = LineIndex(text)
    assert index.position(2) == lsp.Position(line=0, character=3)  # after the emoji
    assert index.offset(lsp.Position(line=0, character=3)) == 2
    assert index.position(6) == lsp.Position(line=1, character=2)
    assert index.offset(lsp.Position(line=5, character=0)) == len(text)
    assert index.offset(lsp.Position(line=0, character=99)) == 3


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "dfc", "lsp"]),
    params=["visual-studio-code", "neovim"],
    scope="module",
)
async def bad_settings_client(
    lsp_client: LanguageClient, request: pytest.FixtureRequest
) -> AsyncIterator[None]:
    params = lsp.InitializeParams(
        capabilities=client_capabilities(request.param),
        initialization_options={"debounceMs": "fast"},
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="module")
async def test_bad_initialization_options_are_shown_and_defaulted(
    bad_settings_client: LanguageClient,
) -> None:
    # Any request round-trip guarantees the `initialized` notification has been handled.
    await bad_settings_client.workspace_symbol_async(lsp.WorkspaceSymbolParams(query="x"))
    messages = [m.message for m in bad_settings_client.messages]
    assert any("dfc.debounceMs" in m for m in messages), messages


def test_positions_in_utf8_and_utf32() -> None:
    text = "é😀x\n"
    utf8 = LineIndex(text, "utf-8")
    assert utf8.position(2) == lsp.Position(line=0, character=6)
    assert utf8.offset(lsp.Position(line=0, character=6)) == 2
    utf32 = LineIndex(text, "utf-32")
    assert utf32.position(2) == lsp.Position(line=0, character=2)
    assert utf32.offset(lsp.Position(line=0, character=2)) == 2
