"""Workflow names: a workflow's ``df.start`` label, else a name made from the file name.

A file's only unlabeled workflow is named after the file's stem (``orders.dsql`` gives
``orders``); several unlabeled workflows are numbered in file order (``orders_1``,
``orders_2``, ...). Plans are stored and started by these names. The rule is a function of the
file name and the labels alone, so tools that know only those (the language server, across the
statements it analyses one at a time) name workflows exactly as the compiler does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath


def workflow_names(filename: str, labels: Sequence[str | None]) -> list[str]:
    """The names of a file's workflows, in file order, given their labels (None: unlabeled)."""
    stem = PurePath(filename).stem or "workflow"
    numbered = sum(1 for label in labels if label is None) != 1
    names: list[str] = []
    counter = 0
    for label in labels:
        if label is not None:
            names.append(label)
            continue
        counter += 1
        names.append(f"{stem}_{counter}" if numbered else stem)
    return names
