"""What a named result looks like, as far as the source tells (for ``$name.col`` checks).

A SQL step gives a row set whose columns :mod:`compiler.sqlshape` infers (or not, for
``SELECT *``); signal and HTTP steps give objects with the fields the catalogue lists
(``result_fields``); a join gives an array; sleeps, schedules and breaks store nothing. Compound
steps pass on the shape of the step that gives their result.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler import ir
from compiler.catalogue import Catalogue
from compiler.checker.context import sql_shape


@dataclass(frozen=True, slots=True)
class ResultShape:
    kind: str  # "rows", "object", "array" or "unknown"
    fields: tuple[str, ...] | None = None  # None = not known

    @property
    def known_fields(self) -> bool:
        return self.kind in ("rows", "object") and self.fields is not None


UNKNOWN = ResultShape("unknown")
NOT_STORED = (ir.Sleep, ir.WaitSchedule, ir.Break)
_ENVELOPE_FUNCTIONS = {
    "wait_signal": "wait_for_signal",
    "http": "http",
    "http_multipart": "http_multipart",
}


def result_shape(node: ir.Node, catalogue: Catalogue) -> ResultShape:
    """The shape of ``node``'s result."""
    if isinstance(node, ir.Sql):
        columns = sql_shape(node).columns
        return ResultShape("rows", columns)
    if isinstance(node, ir.Seq):
        return result_shape(node.steps[-1], catalogue)
    if isinstance(node, ir.Join):
        return ResultShape("array")
    if isinstance(node, ir.Race):
        return union([result_shape(b, catalogue) for b in node.branches])
    if isinstance(node, ir.If | ir.IfRows):
        if node.otherwise is None:
            return UNKNOWN
        return union([result_shape(node.then, catalogue), result_shape(node.otherwise, catalogue)])
    if isinstance(node, ir.Retry | ir.Timeout | ir.Undo):
        return result_shape(node.body, catalogue)
    function = _ENVELOPE_FUNCTIONS.get(node.kind)
    if function is not None:
        entry = catalogue.get(function)
        if entry is not None and entry.result_fields is not None:
            return ResultShape("object", tuple(entry.result_fields))
    return UNKNOWN


def union(shapes: list[ResultShape]) -> ResultShape:
    """The shape of a result that is one of ``shapes``."""
    if len(shapes) == 1:  # most names are bound once: that shape is the answer, as below
        only, named = shapes[0], shapes[0].fields
        if named is None or (only.kind != "array" and len(set(named)) == len(named)):
            return UNKNOWN if only.kind == "unknown" else only
    kinds = {s.kind for s in shapes}
    if len(kinds) != 1 or "unknown" in kinds:
        return UNKNOWN
    kind = kinds.pop()
    if kind == "array":
        return ResultShape("array")
    if any(s.fields is None for s in shapes):
        return ResultShape(kind)
    fields: list[str] = []
    for shape in shapes:
        fields.extend(f for f in shape.fields or () if f not in fields)
    return ResultShape(kind, tuple(fields))
