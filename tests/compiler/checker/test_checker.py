"""Checker rules, driven by the fixtures in ``fixtures/*.txt`` (see :mod:`.fixtures`).

Each fixture must give exactly its expected diagnostics at their positions; the rendered
diagnostics are snapshotted; every quick fix offered must make its diagnostic go away.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from syrupy.assertion import SnapshotAssertion

from compiler.api import check_text, compile_text
from compiler.codes import CODES
from compiler.diagnostics import Diagnostic, Fix
from compiler.render import print_diagnostics
from compiler.source import SourceFile
from tests.compiler.checker.fixtures import Fixture, all_fixtures, relevant

FIXTURES = all_fixtures()
SEMANTIC = [f for f in FIXTURES if any(code >= "DFC3" for code, _ in f.expected)]


def _diagnostics(fixture: Fixture) -> list[Diagnostic]:
    return check_text(fixture.source, "fixture.dsql").diagnostics


def test_there_are_enough_semantic_error_fixtures() -> None:
    errors = [f for f in SEMANTIC if any(CODES[c].severity == "error" for c, _ in f.expected)]
    assert len(errors) >= 50


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.id)
def test_fixture(fixture: Fixture) -> None:
    assert all(position != "?" for _, position in fixture.expected), "give every position"
    assert relevant(_diagnostics(fixture), fixture) == list(fixture.expected)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.id)
def test_rendered(fixture: Fixture, snapshot: SnapshotAssertion) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, no_color=True, highlight=False)
    source = SourceFile("fixture.dsql", fixture.source)
    print_diagnostics(console, _diagnostics(fixture), source, "fixture.dsql")
    assert buffer.getvalue() == snapshot


def apply(text: str, fix: Fix) -> str:
    for edit in sorted(fix.edits, key=lambda e: e.span.start, reverse=True):
        text = text[: edit.span.start] + edit.text + text[edit.span.end :]
    return text


FIXABLE = [
    (f, d) for f in FIXTURES for d in _diagnostics(f) if d.fixes and d.code in dict(f.expected)
]


@pytest.mark.parametrize(
    ("fixture", "diagnostic"), FIXABLE, ids=[f"{f.id} [{d.code}]" for f, d in FIXABLE]
)
def test_quick_fix_removes_the_diagnostic(fixture: Fixture, diagnostic: Diagnostic) -> None:
    fixed = apply(fixture.source, diagnostic.fixes[0])
    after = check_text(fixed, "fixture.dsql").diagnostics
    assert not any(
        d.code == diagnostic.code and d.span.start == diagnostic.span.start for d in after
    ), fixed
    assert not any(d.code.startswith("DFC1") for d in after), fixed


def test_quick_fixes_are_offered() -> None:
    codes = {d.code for _, d in FIXABLE}
    assert {"DFC601", "DFC404", "DFC301", "DFC302", "DFC304", "DFC503", "DFC504"} <= codes


def test_valid_programs_compile_after_portability_fixes() -> None:
    source = "'SELECT 1' ~> 'SELECT 2' & 'SELECT 3'"
    diagnostic = next(d for d in check_text(source, "x.dsql").diagnostics if d.code == "DFC601")
    fixed = apply(source, diagnostic.fixes[0])
    assert fixed == "'SELECT 1' ~> ('SELECT 2' & 'SELECT 3')"
    assert compile_text(fixed, "x.dsql").plans


def test_codes_are_registered() -> None:
    for fixture in FIXTURES:
        for code, _ in fixture.expected:
            assert code in CODES


def test_deep_nesting_is_reported() -> None:
    source = "'SELECT 1'"
    for _ in range(300):
        source = f"df.retry({source}, 2)"
    codes = {d.code for d in check_text(source, "deep.dsql").diagnostics}
    assert codes == {"DFC512"}


def test_nesting_up_to_the_limit_compiles() -> None:
    source = "'SELECT 1'"
    for _ in range(256):
        source = f"@> ({source})"
    result = compile_text(source, "deep.dsql")
    assert not result.has_errors
    assert len(result.plans[0]["nodes"]) == 257
