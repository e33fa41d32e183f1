"""Workflow names: the label, else the file's stem, numbered when several are unlabeled."""

from __future__ import annotations

import pytest

from compiler.api import front_end
from compiler.naming import workflow_names


@pytest.mark.parametrize(
    ("filename", "labels", "names"),
    [
        ("orders.dsql", [None], ["orders"]),
        ("orders.dsql", [None, None], ["orders_1", "orders_2"]),
        ("orders.dsql", ["a", None, "b"], ["a", "orders", "b"]),
        ("orders.dsql", [None, "a", None], ["orders_1", "a", "orders_2"]),
        ("dir/nightly.load.dsql", [None], ["nightly.load"]),
        ("", [None], ["workflow"]),
        ("x.dsql", [], []),
        ("x.dsql", ["same", "same"], ["same", "same"]),
    ],
)
def test_workflow_names(filename: str, labels: list[str | None], names: list[str]) -> None:
    assert workflow_names(filename, labels) == names


def test_the_compiler_names_workflows_by_the_same_rule() -> None:
    text = "'a';\nSELECT df.start('b', 'labelled');\nSELECT df.setvar('v', '1');\n'c';\n"
    program = front_end(text, "jobs.dsql").program
    workflows = program.workflows
    assert [w.name for w in workflows] == workflow_names("jobs.dsql", [None, "labelled", None])
    assert [w.index for w in workflows] == [0, 1, 3]
