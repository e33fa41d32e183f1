"""Reading checker fixtures: titled pairs of a .dsql source and the diagnostics it must give.

A fixture file holds blocks::

    === title
    DFC301 1:23
    ---
    <source>

Each expectation line is a code and the 1-based line:column where its diagnostic starts. A
fixture's errors and warnings must be exactly the expected ones; hints and information are
compared only for the codes a fixture lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compiler.diagnostics import Diagnostic, Severity

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class Fixture:
    family: str
    title: str
    expected: tuple[tuple[str, str], ...]  # (code, "line:col")
    source: str

    @property
    def id(self) -> str:
        return f"{self.family}: {self.title}"


def load(path: Path) -> list[Fixture]:
    out: list[Fixture] = []
    for block in path.read_text("utf-8").split("=== ")[1:]:
        head, _, source = block.partition("\n---\n")
        title, *expects = head.split("\n")
        expected = tuple(
            (parts[0], parts[1] if len(parts) > 1 else "?")
            for parts in (line.split() for line in expects if line.strip())
        )
        out.append(Fixture(path.stem, title.strip(), expected, source.rstrip("\n") + "\n"))
    return out


def all_fixtures() -> list[Fixture]:
    return [f for path in sorted(FIXTURES.glob("*.txt")) for f in load(path)]


def relevant(diagnostics: list[Diagnostic], fixture: Fixture) -> list[tuple[str, str]]:
    listed = {code for code, _ in fixture.expected}
    return [
        (d.code, f"{d.span.line}:{d.span.column}")
        for d in diagnostics
        if d.severity in (Severity.ERROR, Severity.WARNING) or d.code in listed
    ]
