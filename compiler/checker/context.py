"""The state every checker rule reads: the program, the parse, the sink, and shared analyses.

Rules only add diagnostics; they never change the program. Analyses several rules need (the
references in each text, the SQL shape of each step) are computed once per text and cached in
:mod:`compiler.refs` and :mod:`compiler.sqlshape`. Each workflow's steps are listed once, in one
walk, together with the subsets the rules look at (:class:`StepIndex`): on a large file most
rules have a few kinds of step to look at, and walking every step once per rule cost more than
the checks themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from compiler import ir
from compiler.catalogue import Catalogue
from compiler.catalogue import load as load_catalogue
from compiler.diagnostics import DiagnosticSink
from compiler.irwalk import CHILD_FIELDS, walk
from compiler.parser import ParseResult
from compiler.refs import Scan, scan_sql, scan_text
from compiler.source import SourceFile, Span
from compiler.sqlshape import Shape, analyse

# The node kinds that have texts for :func:`raw_texts` (the others have none).
RAW_TEXT_KINDS: Final = frozenset({ir.Http, ir.HttpMultipart, ir.Break})


@dataclass(slots=True)
class StepIndex:
    """A workflow's steps in pre-order, and the subsets of them the rules visit (in pre-order)."""

    nodes: list[ir.Node] = field(default_factory=list)
    # The steps of each kind present but SQL steps (those are in ``sql``), in pre-order.
    by_kind: dict[type[ir.Node], list[ir.Node]] = field(default_factory=dict)
    # The SQL steps, each with the references in its text and whether it is a condition.
    sql: list[tuple[ir.Sql, Scan, bool]] = field(default_factory=list)
    raw: list[ir.Node] = field(default_factory=list)  # steps with texts: RAW_TEXT_KINDS
    bound: list[ir.Node] = field(default_factory=list)  # steps with ``|=> 'name'``


# The child fields in reverse, for pushing children on a stack so they pop in order.
_PUSH_ORDER = {kind: tuple(reversed(names)) for kind, names in CHILD_FIELDS.items()}


def index_steps(root: ir.Node) -> StepIndex:
    """One walk over the tree under ``root`` filling a :class:`StepIndex`.

    Written as one flat loop (the same order as :func:`compiler.irwalk.preorder`) because it
    runs for every step of the file. Each SQL text is scanned here, once for all the rules.
    """
    index = StepIndex()
    nodes, by_kind, sql, raw, bound = index.nodes, index.by_kind, index.sql, index.raw, index.bound
    conditions: set[int] = set()  # an If or Loop comes before its condition in pre-order
    stack = [root]
    pop, push, extend = stack.pop, stack.append, stack.extend
    sql_kind, if_kind, loop_kind, raw_kinds, push_order = (
        ir.Sql,
        ir.If,
        ir.Loop,
        RAW_TEXT_KINDS,
        _PUSH_ORDER,
    )
    while stack:
        node = pop()
        nodes.append(node)
        if node.bind is not None:
            bound.append(node)
        kind = type(node)
        if kind is sql_kind:  # most steps: no children
            sql.append((node, scan_sql(node.sql.value), id(node) in conditions))  # type: ignore[arg-type, attr-defined]
            continue
        same = by_kind.get(kind)
        if same is None:
            by_kind[kind] = [node]
        else:
            same.append(node)
        if kind in raw_kinds:
            raw.append(node)
        elif kind is if_kind or kind is loop_kind:
            condition = node.condition  # type: ignore[attr-defined]
            if type(condition) is sql_kind:
                conditions.add(id(condition))
        for name in push_order[kind]:
            value = getattr(node, name)
            if value is None:
                continue
            if type(value) is tuple:
                extend(reversed(value))
            else:
                push(value)
    return index


@dataclass
class CheckContext:
    program: ir.Program
    parsed: ParseResult | None
    sink: DiagnosticSink
    catalogue: Catalogue
    # Each workflow's steps, indexed once for all the rules that visit them.
    _index: dict[int, StepIndex] = field(default_factory=dict, repr=False)
    _workflows: tuple[ir.Workflow, ...] | None = field(default=None, repr=False)

    @property
    def workflows(self) -> tuple[ir.Workflow, ...]:
        """The program's workflows (``program.workflows`` builds the tuple on every call)."""
        if self._workflows is None:
            self._workflows = self.program.workflows
        return self._workflows

    def steps(self, workflow: ir.Workflow) -> StepIndex:
        """The workflow's steps and their subsets (the rules only read the program, so it lasts)."""
        found = self._index.get(id(workflow))
        if found is None:
            found = self._index[id(workflow)] = index_steps(workflow.body)
        return found

    def nodes(self, workflow: ir.Workflow) -> list[ir.Node]:
        """The workflow's steps in pre-order."""
        return self.steps(workflow).nodes

    def of_kind(self, workflow: ir.Workflow, kind: type[ir.Node]) -> list[ir.Node]:
        """The workflow's steps of one kind other than SQL, in pre-order."""
        return self.steps(workflow).by_kind.get(kind, [])

    @classmethod
    def create(
        cls, program: ir.Program, parsed: ParseResult | None, sink: DiagnosticSink
    ) -> CheckContext:
        return cls(program, parsed, sink, load_catalogue())

    @property
    def source(self) -> SourceFile:
        return self.program.source

    def span(self, text: ir.Text, start: int, end: int) -> Span:
        """The file span of decoded characters ``[start, end)`` of ``text``.

        Texts taken from inside a JSON literal (header values, multipart parts) have no exact
        map back to the file; their positions fall back to the whole literal.
        """
        if not text.breaks:
            return text.span
        span = text.file_span(self.source, start, end)
        if span.start < text.span.start or span.end > text.span.end:
            return text.span
        return span


def sql_scan(node: ir.Sql) -> Scan:
    return scan_sql(node.sql.value)


def sql_shape(node: ir.Sql) -> Shape:
    return analyse(scan_sql(node.sql.value).masked)


def raw_texts(node: ir.Node) -> Iterator[ir.Text]:
    """The texts of a non-SQL node that the runtime substitutes references into."""
    if isinstance(node, ir.Http):
        yield node.url
        if node.body is not None:
            yield node.body
        yield from _header_texts(node.headers)
    elif isinstance(node, ir.HttpMultipart):
        yield node.url
        yield from _header_texts(node.headers)
        if node.parts is not None and isinstance(node.parts.value, list):
            for part in node.parts.value:
                if not isinstance(part, dict):
                    continue
                for key in ("name", "filename", "data_b64"):
                    value = part.get(key)
                    if isinstance(value, str):
                        yield _json_text(value, node.parts.span)
    elif isinstance(node, ir.Break) and node.value is not None:
        yield node.value


def _header_texts(headers: ir.Json | None) -> Iterator[ir.Text]:
    if headers is None or not isinstance(headers.value, dict):
        return
    for value in headers.value.values():
        if isinstance(value, str):
            yield _json_text(value, headers.span)


def _json_text(value: str, span: Span) -> ir.Text:
    # Values inside a JSON literal have no exact map back to the file: no breaks, so that
    # positions inside them fall back to the literal as a whole (see CheckContext.span).
    return ir.Text(value=value, span=span, breaks=())


def text_scan(text: ir.Text) -> Scan:
    return scan_text(text.value)


def workflow_nodes(workflow: ir.Workflow) -> Iterator[ir.Node]:
    return walk(workflow.body)
