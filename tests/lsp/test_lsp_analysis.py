"""Incremental analysis equals ``dfc check``, whatever edits lead to the text."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.api import check_text
from lsp.analysis import StatementCache, analyse_document
from lsp.lexing import statement_ranges, update_ranges

ROOT = Path(__file__).resolve().parents[2]

FILES = {
    "errors": """SELECT df.setvar('api', 'https://example.com');
SELECT df.start('SELECT 1 AS a' |=> 'a' ~> df.slep(5), 'one');
SELECT df.start('SELECT $a.x' ~> df.http('{apii}/x'), 'one');
SELECT df.start('SELEC 1' ~> df.wait_for_schedule('61 * * * *'), 'three')
""",
    "unlabeled": """'SELECT 1' ~> 'SELECT 2';
'SELECT 3';
SELECT df.start('SELECT 4', 'unlabeled');
""",
    "broken": """SELECT df.start('SELECT 1' ~> , 'a');
SELECT df.start('unterminated ~> 'x', 'b');
/* never closed
""",
    "vars": """SELECT df.start(df.http('{base}/{path}', 'GET'), 'w');
SELECT df.setvar('base', 'https://x.test');
""",
    "example": (ROOT / "examples" / "hello.dsql").read_text("utf-8"),
}


def summary(diagnostics: list) -> list[tuple]:  # type: ignore[type-arg]
    return [(d.code, d.span, d.message, d.hint, d.fixes, d.related) for d in diagnostics]


CORPUS = sorted((ROOT / "tests" / "compiler" / "corpus").glob("*/*.dsql"))


@pytest.mark.parametrize("path", CORPUS, ids=[f"{p.parent.name}/{p.stem}" for p in CORPUS])
def test_same_diagnostics_as_check_on_the_compiler_corpus(path: Path) -> None:
    text = path.read_text("utf-8")
    document = analyse_document(text, path.name, StatementCache())
    assert summary(document.diagnostics) == summary(check_text(text, path.name).diagnostics)


@pytest.mark.parametrize("name", sorted(FILES))
def test_same_diagnostics_as_check(name: str) -> None:
    text = FILES[name]
    document = analyse_document(text, "file.dsql", StatementCache())
    assert summary(document.diagnostics) == summary(check_text(text, "file.dsql").diagnostics)


def test_an_edit_reanalyses_one_statement() -> None:
    cache = StatementCache()
    text = "".join(f"SELECT df.start('SELECT {i}', 'w{i}');\n" for i in range(50))
    first = analyse_document(text, "f.dsql", cache)
    misses = cache.misses
    edited = text.replace("'SELECT 7'", "'SELECT 77'")
    second = analyse_document(edited, "f.dsql", cache, previous=first)
    assert cache.misses == misses + 1
    assert second.diagnostics == []


def test_duplicate_names_across_statements() -> None:
    text = "SELECT df.start('SELECT 1', 'w');\nSELECT df.start('SELECT 2', 'w');\n"
    document = analyse_document(text, "f.dsql", StatementCache())
    assert [d.code for d in document.diagnostics] == ["DFC511"]
    assert summary(document.diagnostics) == summary(check_text(text, "f.dsql").diagnostics)


PIECES = ["'", ";", "$$", "$t$", "--", "\n", "/*", "*/", "(", ")", " ", "E'", "\\", "x", "SELECT 1"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=25), st.data())
def test_incremental_split_equals_full_split(pieces: list[str], data: st.DataObject) -> None:
    old = "".join(pieces)
    start = data.draw(st.integers(0, len(old)))
    end = data.draw(st.integers(start, len(old)))
    inserted = "".join(data.draw(st.lists(st.sampled_from(PIECES), max_size=3)))
    new = old[:start] + inserted + old[end:]
    assert update_ranges(old, statement_ranges(old), new) == statement_ranges(new)


def test_random_edit_sessions_match_check() -> None:
    rng = random.Random(7)
    text = FILES["errors"] + FILES["unlabeled"]
    cache = StatementCache()
    document = analyse_document(text, "f.dsql", cache)
    alphabet = ["'", ";", "x", " ", "$a", "{api}", "df.sleep(1)", "~>", ")", "("]
    for _ in range(40):
        position = rng.randrange(len(text) + 1)
        cut = rng.randrange(0, 3)
        text = text[:position] + rng.choice(alphabet) + text[position + cut :]
        document = analyse_document(text, "f.dsql", cache, previous=document)
        assert summary(document.diagnostics) == summary(check_text(text, "f.dsql").diagnostics)


def test_a_compiler_failure_is_a_diagnostic_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    import lsp.analysis

    def broken(text: str, filename: str) -> object:
        if "boom" in text:
            raise IndexError("tuple index out of range")
        return check_text(text, filename)

    monkeypatch.setattr(lsp.analysis, "check_text", broken)
    text = "SELECT df.start('SELECT 1', 'a');\nSELECT df.start('boom', 'b');\n"
    document = analyse_document(text, "f.dsql", StatementCache())
    assert [d.code for d in document.diagnostics] == ["DFC000"]
    assert document.diagnostics[0].span.start == text.index("SELECT df.start('boom'")
    assert "IndexError" in document.diagnostics[0].message
