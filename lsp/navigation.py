"""Go to definition, find references and rename, for result names and variables.

A result name (``|=> 'name'`` / ``df.as`` / ``$name``) belongs to one workflow: the same name
in another workflow of the file is another name, so its references and renames stay inside the
workflow. A variable (``df.setvar('var', …)`` / ``{var}``) belongs to the file. Definitions of
a ``$name`` prefer the bindings in scope at the use (:func:`lsp.names.scope_at`); a name bound
in both branches of an IF has two.
"""

from __future__ import annotations

import re

from lsprotocol import types as lsp

from compiler import ir
from lsp.analysis import Placed
from lsp.names import Occurrence, occurrence_at, occurrences, scope_at
from lsp.state import DocumentState

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def bindings_of(placed: Placed, name: str) -> list[tuple[Placed, Occurrence]]:
    """The places ``name`` is bound in the workflow of ``placed``."""
    return [
        (placed, o) for o in occurrences(placed.analysis) if o.kind == "bind" and o.name == name
    ]


def _target(state: DocumentState, position: lsp.Position) -> tuple[Placed, Occurrence] | None:
    offset = state.lines.offset(position)
    placed = state.analysis.statement_at(offset)
    if placed is None:
        return None
    occurrence = occurrence_at(placed.analysis, placed.to_local(offset))
    return (placed, occurrence) if occurrence is not None else None


def _location(state: DocumentState, placed: Placed, occurrence: Occurrence) -> lsp.Location:
    return lsp.Location(
        uri=state.uri,
        range=state.lines.range(placed.to_doc(occurrence.start), placed.to_doc(occurrence.end)),
    )


def _all_related(
    state: DocumentState, placed: Placed, occurrence: Occurrence
) -> list[tuple[Placed, Occurrence]]:
    """Every occurrence of the same name: the workflow's for results, the file's for variables."""
    if occurrence.is_variable:
        return [
            (p, o)
            for p in state.analysis.statements
            for o in occurrences(p.analysis)
            if o.is_variable and o.name == occurrence.name
        ]
    return [
        (placed, o)
        for o in occurrences(placed.analysis)
        if not o.is_variable and o.name == occurrence.name
    ]


def definition(state: DocumentState, position: lsp.Position) -> list[lsp.Location]:
    found = _target(state, position)
    if found is None:
        return []
    placed, occurrence = found
    if occurrence.kind in ("bind", "var_decl"):
        return [_location(state, placed, occurrence)]
    if occurrence.kind == "var_ref":
        return [
            _location(state, p, o)
            for p, o in _all_related(state, placed, occurrence)
            if o.kind == "var_decl"
        ]
    bindings = bindings_of(placed, occurrence.name)
    statement = placed.analysis.statement
    if isinstance(statement, ir.Workflow):
        in_scope = {
            b.start
            for b in scope_at(statement, occurrence.start, placed.analysis.source.text)
            if b.name == occurrence.name
        }
        preferred = [(p, o) for p, o in bindings if o.start in in_scope]
        bindings = preferred or bindings
    return [_location(state, p, o) for p, o in bindings]


def references(
    state: DocumentState, position: lsp.Position, include_declaration: bool = True
) -> list[lsp.Location]:
    found = _target(state, position)
    if found is None:
        return []
    placed, occurrence = found
    return [
        _location(state, p, o)
        for p, o in _all_related(state, placed, occurrence)
        if include_declaration or o.kind in ("ref", "var_ref")
    ]


def prepare_rename(
    state: DocumentState, position: lsp.Position
) -> lsp.PrepareRenamePlaceholder | None:
    found = _target(state, position)
    if found is None:
        return None
    placed, occurrence = found
    if occurrence.is_variable and occurrence.name in ("sys_instance_id", "sys_label"):
        return None
    return lsp.PrepareRenamePlaceholder(
        range=state.lines.range(placed.to_doc(occurrence.start), placed.to_doc(occurrence.end)),
        placeholder=occurrence.name,
    )


class RenameError(ValueError):
    """A rename that cannot be done, with a message for the user."""


def rename(state: DocumentState, position: lsp.Position, new_name: str) -> lsp.WorkspaceEdit | None:
    found = _target(state, position)
    if found is None:
        return None
    placed, occurrence = found
    if not IDENTIFIER.match(new_name):
        raise RenameError(
            f"{new_name!r} is not a valid name: use letters, digits and underscores, "
            "not starting with a digit"
        )
    if occurrence.is_variable and occurrence.name in ("sys_instance_id", "sys_label"):
        raise RenameError(f"{{{occurrence.name}}} is a system variable and cannot be renamed")
    edits = [
        lsp.TextEdit(range=state.lines.range(p.to_doc(o.start), p.to_doc(o.end)), new_text=new_name)
        for p, o in _all_related(state, placed, occurrence)
    ]
    return lsp.WorkspaceEdit(changes={state.uri: edits})
