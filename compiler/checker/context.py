"""The state every checker rule reads: the program, the parse, the sink, and shared analyses.

Rules only add diagnostics; they never change the program. Analyses several rules need (the
references in each text, the SQL shape of each step) are computed once per text and cached in
:mod:`compiler.refs` and :mod:`compiler.sqlshape`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from compiler import ir
from compiler.catalogue import Catalogue
from compiler.catalogue import load as load_catalogue
from compiler.diagnostics import DiagnosticSink
from compiler.irwalk import preorder, walk
from compiler.parser import ParseResult
from compiler.refs import Scan, scan_sql, scan_text
from compiler.source import SourceFile, Span
from compiler.sqlshape import Shape, analyse


@dataclass
class CheckContext:
    program: ir.Program
    parsed: ParseResult | None
    sink: DiagnosticSink
    catalogue: Catalogue
    # Each workflow's steps in pre-order, listed once for all the rules that visit them.
    _nodes: dict[int, list[ir.Node]] = field(default_factory=dict, repr=False)

    def nodes(self, workflow: ir.Workflow) -> list[ir.Node]:
        """The workflow's steps in pre-order (the rules only read the program, so it lasts)."""
        found = self._nodes.get(id(workflow))
        if found is None:
            found = self._nodes[id(workflow)] = preorder(workflow.body)
        return found

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


# The node kinds that have texts for :func:`raw_texts` (the others have none).
RAW_TEXT_KINDS = frozenset({ir.Http, ir.HttpMultipart, ir.Break})


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
