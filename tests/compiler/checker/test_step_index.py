"""The rules' shared step index lists what a plain pre-order walk finds, in the same order."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler import ir
from compiler.api import front_end
from compiler.checker.context import RAW_TEXT_KINDS, index_steps
from compiler.irwalk import preorder
from compiler.refs import scan_sql
from tests.compiler.checker.fixtures import all_fixtures

_ROOT = Path(__file__).parents[3]
_FILES = sorted(_ROOT.glob("examples/*.dsql")) + sorted(
    (_ROOT / "tests/compiler/emit/programs").glob("*.dsql")
)
_SOURCES = [(p.name, p.read_text("utf-8")) for p in _FILES] + [
    (f.id, f.source) for f in all_fixtures()
]


@pytest.mark.parametrize(("name", "source"), _SOURCES, ids=[n for n, _ in _SOURCES])
def test_index_agrees_with_a_preorder_walk(name: str, source: str) -> None:
    for workflow in front_end(source, name).program.workflows:
        nodes = preorder(workflow.body)
        index = index_steps(workflow.body)
        assert index.nodes == nodes
        conditions = {
            id(n.condition) for n in nodes if isinstance(n, ir.If | ir.Loop) and n.condition
        }
        assert [(n, s, c) for n, s, c in index.sql] == [
            (n, scan_sql(n.sql.value), id(n) in conditions) for n in nodes if type(n) is ir.Sql
        ]
        assert index.raw == [n for n in nodes if type(n) in RAW_TEXT_KINDS]
        assert index.bound == [n for n in nodes if n.bind is not None]
        kinds = {type(n) for n in nodes if type(n) is not ir.Sql}
        assert set(index.by_kind) == kinds
        for kind, listed in index.by_kind.items():
            assert listed == [n for n in nodes if type(n) is kind]
