"""The order of the compiler's stages, written once.

    parse + lower  (compiler.parser, compiler.lower)   text -> typed IR, syntax/argument errors
    check          (compiler.checker)                  IR -> diagnostics (DSL.md §6)
    optimize       (compiler.optimizer)                IR -> IR, semantics preserved
    emit           (compiler.emit)                     IR -> one plan per workflow

Each stage reads only what the previous one produced. Checking runs on the IR as written (so
positions and warnings refer to the source), optimizing only when no error was found, and plans
are emitted only for a file without errors.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from compiler import collector, ir
from compiler.checker import check
from compiler.diagnostics import Diagnostic, DiagnosticSink
from compiler.emit import emit_plan
from compiler.lower import lower
from compiler.optimizer import PassRecord, optimize
from compiler.parser import ParseResult, parse
from compiler.source import SourceFile

STAGES = ("parse", "check", "optimize", "emit")


@dataclass
class Compilation:
    """Everything one run of the pipeline produced for one file."""

    source: SourceFile
    parsed: ParseResult = field(repr=False)
    program: ir.Program  # as written
    optimized: ir.Program | None = None
    plans: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    passes: list[PassRecord] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)


@contextmanager
def _deep_recursion(limit: int = 20_000) -> Iterator[None]:
    """Room for the recursive stages on deeply nested input (depth is limited by DFC512).

    Parsing is iterative (LALR); lowering, checking and emitting recurse once or a few times per
    nesting level, which Python's default limit of 1000 frames cuts off before 256 levels.
    """
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, limit))
    try:
        with collector.paused():
            yield
    finally:
        sys.setrecursionlimit(previous)


def run(
    text: str,
    filename: str = "<input>",
    *,
    until: str = "emit",
    optimize_level: int = 1,
) -> Compilation:
    """Run the stages up to and including ``until``; never raises on bad input."""
    with _deep_recursion():
        return _run(text, filename, until, optimize_level)


def _run(text: str, filename: str, until: str, optimize_level: int) -> Compilation:
    source = SourceFile(filename, text)
    sink = DiagnosticSink()
    parsed = parse(source, sink)
    program = lower(parsed)
    result = Compilation(source, parsed, program)
    if until != "parse":
        check(program, parsed, sink)
    result.diagnostics = sink.sorted()
    if until in ("parse", "check") or sink.has_errors:
        return result
    optimized = optimize(program, result.passes) if optimize_level > 0 else program
    result.optimized = optimized
    if until == "optimize":
        return result
    declared = optimized.variables
    result.plans = [emit_plan(w, optimized, declared) for w in optimized.workflows]
    return result
