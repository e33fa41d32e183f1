"""Definition, references and rename across a file with several workflows."""

from __future__ import annotations

import pytest
from lsp_helpers import covered, position, state_of
from lsprotocol import types as lsp

from lsp.navigation import RenameError, definition, prepare_rename, references, rename

FILE = """SELECT df.setvar('region', 'eu');
SELECT df.start(
    'SELECT id FROM orders WHERE region = ''{region}''' |=> 'orders'
    ~> 'SELECT count(*) FROM items WHERE order_id = $orders.id' |=> 'items'
    ~> df.if_rows('orders', 'SELECT $items?', 'SELECT 0'),
    'first'
);
SELECT df.start(
    'SELECT 1 AS id' |=> 'orders'
    ~> df.http('https://x.test/{region}/$orders.id', 'GET'),
    'second'
);
"""


def edits_text(state, edit: lsp.WorkspaceEdit) -> list[str]:  # type: ignore[no-untyped-def]
    assert edit.changes is not None
    return sorted(
        covered(state, e.range) + "@" + str(e.range.start.line) for e in edit.changes[state.uri]
    )


def test_definition_of_a_name_is_its_binding_in_the_same_workflow() -> None:
    state = state_of(FILE)
    found = definition(state, position(state, "$orders.id", 2))
    assert len(found) == 1
    assert found[0].range.start == position(state, "'orders'", 1)
    second = definition(state, position(state, "$orders.id", 2, occurrence=1))
    assert second[0].range.start == position(state, "'orders'", 1, occurrence=2)


def test_definition_of_a_variable_is_its_setvar() -> None:
    state = state_of(FILE)
    found = definition(state, position(state, "{region}", 1, occurrence=1))
    assert found[0].range.start == position(state, "region")


def test_references_stay_in_the_workflow() -> None:
    state = state_of(FILE)
    found = references(state, position(state, "'orders'", 2))
    lines = sorted(loc.range.start.line for loc in found)
    assert lines == [2, 3, 4]  # binding, $orders.id, df.if_rows('orders')
    without = references(state, position(state, "'orders'", 2), include_declaration=False)
    assert len(without) == 2


def test_rename_a_result_name_in_one_workflow_only() -> None:
    state = state_of(FILE)
    edit = rename(state, position(state, "$orders.id", 3), "order_rows")
    assert edit is not None
    assert edits_text(state, edit) == ["orders@2", "orders@3", "orders@4"]


def test_rename_a_variable_everywhere_in_the_file() -> None:
    state = state_of(FILE)
    edit = rename(state, position(state, "'region'", 2), "zone")
    assert edit is not None
    assert edits_text(state, edit) == ["region@0", "region@2", "region@9"]


def test_prepare_rename_and_invalid_names() -> None:
    state = state_of(FILE)
    prepared = prepare_rename(state, position(state, "$items", 3))
    assert prepared is not None and prepared.placeholder == "items"
    with pytest.raises(RenameError):
        rename(state, position(state, "$items", 3), "not a name")
    assert prepare_rename(state, position(state, "SELECT df.start", 3)) is None
