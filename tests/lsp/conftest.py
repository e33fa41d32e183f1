"""Fixtures for the language server tests: a real ``dfc lsp`` process per client kind.

End-to-end tests start the server over stdio with pytest-lsp and initialise it with the
recorded client capabilities of VS Code and Neovim, so every feature is exercised against what
those editors actually announce. One server per client kind serves a whole test module; each
test opens its own document URI.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

CLIENTS = ["visual-studio-code", "neovim"]
ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = Path(__file__).resolve().parent / "workspace"
_counter = itertools.count()


def server_command() -> list[str]:
    return [sys.executable, "-m", "dfc", "lsp"]


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=server_command()),
    params=CLIENTS,
    scope="module",
)
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest) -> AsyncIterator[None]:
    params = lsp.InitializeParams(
        capabilities=client_capabilities(request.param),
        initialization_options={"debounceMs": 0},
        workspace_folders=[lsp.WorkspaceFolder(uri=WORKSPACE.as_uri(), name="workspace")],
        root_uri=WORKSPACE.as_uri(),
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()
