"""The corpus: real-looking .dsql files that must compile, and broken ones that must not.

``corpus/valid/*.dsql`` covers every construct of the language and every example style of
pg_durable's documentation. Each file must produce no error diagnostic; its IR (and any
warnings) is snapshot-tested.

``corpus/malformed/*.dsql`` holds one kind of mistake per file (some hold several). Each
file's first line says which diagnostics it must produce, e.g.::

    -- expect: DFC101 3:15, DFC203 5:1

The listed codes and positions are checked here, independently of the snapshot, so a
diagnostic that moves to the wrong place fails even if the snapshots are regenerated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from compiler.api import FrontEndResult, check_text, front_end, ir_to_json
from compiler.formatter import format_text

Render = Callable[[FrontEndResult], str]

CORPUS = Path(__file__).parent / "corpus"
VALID = sorted((CORPUS / "valid").glob("*.dsql"))
MALFORMED = sorted((CORPUS / "malformed").glob("*.dsql"))
EXPECT = re.compile(r"--\s*expect:\s*(?P<items>.*)$")
ITEM = re.compile(r"(?P<code>DFC\d{3})\s+(?P<line>\d+):(?P<column>\d+)")


def read(path: Path) -> str:
    # newline="" keeps CRLF line endings as they are in the file.
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


def expectations(text: str) -> list[tuple[str, int, int]]:
    """The ``-- expect:`` list of the first line: (code, line, column) in file order."""
    first = text.split("\n", 1)[0]
    match = EXPECT.match(first)
    if match is None:
        raise AssertionError("a malformed corpus file must start with '-- expect: CODE L:C, ...'")
    items = [ITEM.fullmatch(part.strip()) for part in match["items"].split(",")]
    if not items or any(item is None for item in items):
        raise AssertionError(f"cannot read the expectation line: {first!r}")
    return [(m["code"], int(m["line"]), int(m["column"])) for m in items if m is not None]


def test_corpus_sizes() -> None:
    assert len(VALID) >= 60
    assert len(MALFORMED) >= 40


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_program(path: Path, snapshot: SnapshotAssertion, render: Render) -> None:
    result = front_end(read(path), path.name)
    assert not result.has_errors, render(result)
    assert result.program.statements, "a valid corpus file must define something"
    assert {"ir": ir_to_json(result.program), "diagnostics": render(result)} == snapshot


@pytest.mark.parametrize("path", MALFORMED, ids=[p.stem for p in MALFORMED])
def test_malformed_program(path: Path, snapshot: SnapshotAssertion, render: Render) -> None:
    text = read(path)
    result = front_end(text, path.name)
    found = [(d.code, d.span.line, d.span.column) for d in result.diagnostics]
    assert found == expectations(text), render(result)
    for diagnostic in result.diagnostics:
        assert diagnostic.message, diagnostic
        # Every error says what to do: in its hint, or in the message itself.
        assert diagnostic.hint or diagnostic.code in _SELF_EXPLAINING, (
            f"{diagnostic.code} at {diagnostic.span.line}:{diagnostic.span.column} has no hint: "
            f"{diagnostic.message}"
        )
    assert render(result) == snapshot


# Codes whose message already names the fix (e.g. "df.sleep needs its 'seconds' argument").
_SELF_EXPLAINING: frozenset[str] = frozenset()


def strip_spans(value: object) -> object:
    if isinstance(value, dict):
        return {k: strip_spans(v) for k, v in value.items() if k != "span"}
    if isinstance(value, list):
        return [strip_spans(v) for v in value]
    return value


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_formatting_keeps_the_program(path: Path) -> None:
    text = read(path)
    formatted = format_text(text, path.name)
    before = strip_spans(ir_to_json(front_end(text, path.name).program))
    assert strip_spans(ir_to_json(front_end(formatted, path.name).program)) == before
    assert format_text(formatted, path.name) == formatted


@pytest.mark.parametrize("path", MALFORMED, ids=[p.stem for p in MALFORMED])
def test_formatting_keeps_every_mistake(path: Path) -> None:
    """Formatting a broken file never hides, moves into or invents a different mistake."""
    text = read(path)
    before = [d.code for d in front_end(text, path.name).diagnostics]
    after = [d.code for d in front_end(format_text(text, path.name), path.name).diagnostics]
    assert after == before


@pytest.mark.parametrize("path", VALID + MALFORMED, ids=[p.stem for p in VALID + MALFORMED])
def test_check_never_raises(path: Path) -> None:
    """The full ``dfc check`` pipeline takes every corpus file without an exception."""
    result = check_text(read(path), path.name)
    assert result.source.text == read(path)
