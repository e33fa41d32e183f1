"""No feature raises, at any position of any file of the compiler corpus (valid or malformed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_helpers import state_of
from lsprotocol import types as lsp

from lsp.code_actions import code_actions
from lsp.completion import complete
from lsp.diagnostics import publishable
from lsp.folding import folding_ranges
from lsp.hover import hover
from lsp.navigation import definition, prepare_rename, references, rename
from lsp.semantic_tokens import encode
from lsp.signature_help import signature_help
from lsp.symbols import document_symbols

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "compiler" / "corpus").glob("*/*.dsql"))


@pytest.mark.parametrize("path", CORPUS, ids=[f"{p.parent.name}/{p.stem}" for p in CORPUS])
def test_every_feature_everywhere(path: Path) -> None:
    text = path.read_text("utf-8")
    state = state_of(text, uri=path.as_uri())
    published = publishable(state.analysis, state.lines, state.uri)
    document_symbols(state.analysis, state.lines)
    folding_ranges(state.analysis, state.lines)
    data = encode(state.analysis, state.lines)
    assert len(data) % 5 == 0
    whole = state.lines.range(0, len(text))
    code_actions(state, whole, published)
    step = max(1, len(text) // 60)
    for offset in range(0, len(text) + 1, step):
        position = state.lines.position(offset)
        complete(state, position)
        hover(state, position)
        definition(state, position)
        references(state, position)
        signature_help(state, position)
        if prepare_rename(state, position) is not None:
            assert rename(state, position, "renamed") is not None
    # Positions the document does not have.
    far = lsp.Position(line=10_000, character=10_000)
    assert complete(state, far) is not None
    hover(state, far)
