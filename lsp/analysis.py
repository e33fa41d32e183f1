"""Incremental analysis: a document as statements, each checked once per distinct text.

``dfc check`` analyses a whole file at once; doing that on every keystroke of a long file is
too slow for an editor. A .dsql file is a sequence of statements separated by ``;`` that the
compiler parses one at a time anyway, so the server splits the document into statement chunks
(:func:`lsp.lexing.statement_ranges`) and runs :func:`compiler.api.check_text` on each chunk on
its own, caching the result by the chunk's text. An edit changes one chunk; every other chunk
is a cache hit whose offsets are shifted to where the chunk now starts.

Two rules look across statements, and are handled so that the result equals ``dfc check``:

* ``{var}`` declarations (DFC510): each workflow chunk is analysed behind a *prelude* that
  declares every variable the file declares, so the checker sees the same declarations. The
  prelude is part of the cache key; it changes only when the set of declared names changes.
* workflow names (DFC511): the compiler's own naming and label rule run over the workflows of
  all chunks, placed at their document offsets.

Offsets inside a :class:`StatementAnalysis` are offsets into its analysed input (prelude +
chunk); :class:`Placed` adds the shift that turns them into document offsets.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any

from lark import Token

from compiler import ir, naming
from compiler.api import FrontEndResult, check_text
from compiler.checker import labels
from compiler.checker.context import CheckContext
from compiler.diagnostics import Diagnostic, DiagnosticSink, Edit, Fix, Related, Severity
from compiler.parser import ParseResult
from compiler.source import SourceFile, Span
from lsp.lexing import statement_ranges, update_ranges

log = logging.getLogger("dfc.lsp")

# Not a compiler code: the compiler itself failed (see _check).
INTERNAL_ERROR = "DFC000"

_SETVAR = re.compile(r"\bdf\s*\.\s*setvar\b", re.IGNORECASE)


@dataclass(frozen=True)
class StatementAnalysis:
    """What the compiler says about one statement chunk, analysed behind ``prelude``."""

    text: str
    prelude: str
    result: FrontEndResult = field(repr=False)
    # Facts feature modules derive from this statement, computed once (see lsp.names).
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def base(self) -> int:
        """Where the chunk starts in the analysed input."""
        return len(self.prelude)

    @cached_property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """The chunk's own diagnostics (the prelude's are dropped)."""
        return tuple(d for d in self.result.diagnostics if d.span.start >= self.base)

    @cached_property
    def statement(self) -> ir.Statement | None:
        for statement in self.result.program.statements:
            if statement.span.start >= self.base:
                return statement
        return None

    @cached_property
    def tokens(self) -> tuple[Token, ...]:
        """The chunk's significant tokens (trivia dropped), from the compiler's lexer."""
        out: list[Token] = []
        for parsed in self.result.parsed.statements:
            if parsed.tokens and (parsed.tokens[0].start_pos or 0) >= self.base:
                out.extend(parsed.tokens)
        return tuple(out)

    @cached_property
    def comments(self) -> tuple[ir.Comment, ...]:
        return tuple(c for c in self.result.comments if c.span.start >= self.base)

    @property
    def source(self) -> SourceFile:
        return self.result.source

    @property
    def declared_variable(self) -> str | None:
        statement = self.statement
        return statement.name.value if isinstance(statement, ir.SetVar) else None


@dataclass(frozen=True)
class Placed:
    """A statement analysis at its place in the document: ``doc offset = offset + shift``."""

    start: int
    end: int
    analysis: StatementAnalysis

    @property
    def shift(self) -> int:
        return self.start - self.analysis.base

    def to_doc(self, offset: int) -> int:
        return offset + self.shift

    def to_local(self, doc_offset: int) -> int:
        return doc_offset - self.shift

    def contains(self, doc_offset: int) -> bool:
        return self.start <= doc_offset <= self.end


class StatementCache:
    """A bounded LRU of statement analyses keyed by (prelude, chunk text)."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str, str], StatementAnalysis] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self._setvar: OrderedDict[str, bool] = OrderedDict()

    def mentions_setvar(self, text: str) -> bool:
        """Whether a chunk may declare a variable (remembered per text: asked on every edit)."""
        found = self._setvar.get(text)
        if found is None:
            found = _SETVAR.search(text) is not None
            self._setvar[text] = found
            if len(self._setvar) > self._size:
                self._setvar.popitem(last=False)
        return found

    def get(self, text: str, prelude: str, filename: str) -> StatementAnalysis:
        key = (prelude, text, filename)
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return found
        self.misses += 1
        analysis = StatementAnalysis(text, prelude, _check(prelude + text, filename, len(prelude)))
        self._items[key] = analysis
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return analysis


def _check(text: str, filename: str, base: int) -> FrontEndResult:
    """``check_text``, and if the compiler fails on this text, one diagnostic that says so.

    The compiler promises not to raise on any input; an editor must keep working if it does,
    so the failure becomes an error on the statement (and a log entry), not a dead server.
    """
    try:
        return check_text(text, filename)
    except Exception as error:
        log.exception("the compiler failed on a statement of %s", filename)
        source = SourceFile(filename, text)
        end = len(text.rstrip())
        start = base + (len(text[base:]) - len(text[base:].lstrip()))
        diagnostic = Diagnostic(
            code=INTERNAL_ERROR,
            severity=Severity.ERROR,
            message=f"dfc could not analyse this statement ({type(error).__name__}: {error})",
            span=source.span(min(start, end), end),
            hint="This is a bug in dfc, not in your file: please report it with this statement.",
        )
        parsed = ParseResult(source, [], [])
        return FrontEndResult(
            source, ir.Program(source=source, statements=()), [], [diagnostic], parsed
        )


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def prelude_for(names: set[str]) -> str:
    """Declarations of ``names`` in the shortest form the compiler accepts."""
    return "".join(f"SELECT df.setvar({_quote(n)},'');" for n in sorted(names))


@dataclass
class DocumentAnalysis:
    """One version of one document: its statements, placed, and all of its diagnostics."""

    text: str
    filename: str
    statements: list[Placed]
    ranges: list[tuple[int, int]] = field(default_factory=list)

    @cached_property
    def source(self) -> SourceFile:
        return SourceFile(self.filename, self.text)

    @cached_property
    def file_diagnostics(self) -> list[Diagnostic]:
        """Diagnostics of the rules that compare statements, at document offsets."""
        return _file_level(self)

    @cached_property
    def diagnostics(self) -> list[Diagnostic]:
        """Every diagnostic of the document at document offsets, sorted by position."""
        found = [
            shift_diagnostic(self.source, diagnostic, item.shift)
            for item in self.statements
            for diagnostic in item.analysis.diagnostics
        ]
        found.extend(self.file_diagnostics)
        found.sort(key=lambda d: (d.span.start, d.span.end, d.code))
        return found

    def statement_at(self, offset: int) -> Placed | None:
        """The statement chunk containing a document offset (the first one at a boundary)."""
        lo, hi = 0, len(self.statements)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.statements[mid].end < offset:
                lo = mid + 1
            else:
                hi = mid
        return self.statements[lo] if lo < len(self.statements) else None

    @property
    def variables(self) -> dict[str, tuple[Placed, ir.SetVar]]:
        found: dict[str, tuple[Placed, ir.SetVar]] = {}
        for placed in self.statements:
            statement = placed.analysis.statement
            if isinstance(statement, ir.SetVar):
                found.setdefault(statement.name.value, (placed, statement))
        return found

    @cached_property
    def workflows(self) -> list[tuple[Placed, ir.Workflow, str]]:
        """Each workflow with its chunk and its name as ``dfc check`` names it."""
        placed_workflows: list[tuple[Placed, ir.Workflow]] = [
            (p, p.analysis.statement)
            for p in self.statements
            if isinstance(p.analysis.statement, ir.Workflow)
        ]
        labels = tuple(w.label.value if w.label else None for _, w in placed_workflows)
        names = workflow_names(self.filename, labels)
        return [
            (placed, workflow, name)
            for (placed, workflow), name in zip(placed_workflows, names, strict=True)
        ]


@lru_cache(maxsize=256)
def workflow_names(filename: str, labels: tuple[str | None, ...]) -> tuple[str, ...]:
    """The names ``dfc check`` gives workflows with these labels (None: unlabeled), in order.

    The answer depends only on the labels and the file name, so it is cached and typing
    inside a workflow costs nothing here.
    """
    return tuple(naming.workflow_names(filename, labels))


def _shift_span(source: SourceFile, span: Span, delta: int) -> Span:
    if delta == 0 and span.end <= len(source.text):
        return source.span(span.start, span.end)
    return source.span(span.start + delta, span.end + delta)


def shift_diagnostic(source: SourceFile, diagnostic: Diagnostic, delta: int) -> Diagnostic:
    """The same diagnostic with every span moved by ``delta`` and re-measured in ``source``.

    Second places a diagnostic refers to (the ``(`` an unclosed call opened at, where a name
    was bound) are its ``related`` spans, so they move with it.
    """
    return replace(
        diagnostic,
        span=_shift_span(source, diagnostic.span, delta),
        fixes=tuple(
            Fix(
                fix.title,
                tuple(Edit(_shift_span(source, e.span, delta), e.text) for e in fix.edits),
            )
            for fix in diagnostic.fixes
        ),
        related=tuple(
            Related(_shift_span(source, r.span, delta), r.message) for r in diagnostic.related
        ),
    )


def analyse_document(
    text: str,
    filename: str,
    cache: StatementCache,
    *,
    previous: DocumentAnalysis | None = None,
) -> DocumentAnalysis:
    """Analyse a document, reusing every statement whose text the cache has seen.

    With ``previous`` (an earlier version of the same document) only the text around the edit
    is rescanned for statement boundaries.
    """
    if previous is not None:
        ranges = update_ranges(previous.text, previous.ranges, text)
    else:
        ranges = statement_ranges(text)
    chunks = [text[start:end] for start, end in ranges]
    analyses: list[StatementAnalysis | None] = [None] * len(chunks)
    declared: set[str] = set()
    for index, chunk in enumerate(chunks):
        if cache.mentions_setvar(chunk):
            analysis = cache.get(chunk, "", filename)
            analyses[index] = analysis
            if analysis.declared_variable is not None:
                declared.add(analysis.declared_variable)
    prelude = prelude_for(declared)
    for index, chunk in enumerate(chunks):
        known = analyses[index]
        if known is None or (known.declared_variable is None and prelude):
            analyses[index] = cache.get(chunk, prelude, filename)
    placed = [
        Placed(start, end, analysis)
        for (start, end), analysis in zip(ranges, analyses, strict=True)
        if analysis is not None
    ]
    return DocumentAnalysis(text, filename, placed, ranges)


def _file_level(document: DocumentAnalysis) -> list[Diagnostic]:
    """The rules that compare statements with each other (workflow names)."""
    named = document.workflows
    counts: dict[str, int] = {}
    for _, _, name in named:
        counts[name] = counts.get(name, 0) + 1
    if all(count < 2 for count in counts.values()):
        return []
    source = document.source
    workflows: list[ir.Statement] = []
    for placed, workflow, name in named:
        if counts[name] < 2:
            continue  # the rule reports only names used twice
        label = workflow.label
        if label is not None:
            label = replace(label, span=_shift_span(source, label.span, placed.shift))
        workflows.append(
            replace(
                workflow,
                name=name,
                span=_shift_span(source, workflow.span, placed.shift),
                label=label,
            )
        )
    if len(workflows) < 2:
        return []
    sink = DiagnosticSink()
    program = ir.Program(source=source, statements=tuple(workflows))
    labels.check(CheckContext.create(program, None, sink))
    return sink.items
