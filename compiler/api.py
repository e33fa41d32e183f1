"""The compiler's public functions: text in, IR/plans and diagnostics out; never raises on input.

The order of the stages is written once, in :mod:`compiler.pipeline`; these functions run a
prefix of it. Tools (CLI, language server, runtime) call only this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler import ir
from compiler.diagnostics import Diagnostic, DiagnosticSink
from compiler.lower import lower
from compiler.parser import ParseResult, parse
from compiler.source import SourceFile


@dataclass
class FrontEndResult:
    """What parsing and lowering one file produced."""

    source: SourceFile
    program: ir.Program
    comments: list[ir.Comment]
    diagnostics: list[Diagnostic]
    parsed: ParseResult = field(repr=False)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)


def front_end(text: str, filename: str = "<input>") -> FrontEndResult:
    """Parse and lower ``text``; diagnostics are sorted by position."""
    source = SourceFile(filename, text)
    sink = DiagnosticSink()
    parsed = parse(source, sink)
    program = lower(parsed)
    return FrontEndResult(source, program, parsed.comments, sink.sorted(), parsed)


def read_source(path: str | Path) -> tuple[str | None, Diagnostic | None]:
    """Read a file as UTF-8 text, or a DFC9xx diagnostic saying why it cannot be read."""
    from compiler.source import Span

    name = str(path)
    nowhere = Span(0, 0, 1, 1, 1, 1)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        return None, DiagnosticSink().add("DFC901", nowhere, f"cannot read {name}: {reason}")
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as error:
        text = data[: error.start].decode("utf-8")
        span = SourceFile(name, text).span(len(text), len(text))
        return None, DiagnosticSink().add(
            "DFC902", span, f"{name} is not valid UTF-8 (byte 0x{data[error.start]:02x})"
        )


def ir_to_json(program: ir.Program) -> list[dict[str, Any]]:
    """The IR as plain JSON data (for ``dfc parse --format json`` and snapshot tests)."""
    from compiler.dump import dump_program

    return dump_program(program)


def check_text(text: str, filename: str = "<input>") -> FrontEndResult:
    """Everything ``dfc check`` reports: the front end and the checker."""
    from compiler.pipeline import run

    result = run(text, filename, until="check")
    return FrontEndResult(
        result.source,
        result.program,
        result.parsed.comments,
        result.diagnostics,
        result.parsed,
    )


@dataclass
class CompileResult:
    """Plans (one per workflow, schema-valid) and every diagnostic of one file.

    ``plans`` is empty when any diagnostic is an error. ``program`` is the IR as written,
    ``optimized`` the IR the plans were made from.
    """

    source: SourceFile
    program: ir.Program
    optimized: ir.Program | None
    plans: list[dict[str, Any]]
    diagnostics: list[Diagnostic]
    passes: list[Any] = field(default_factory=list, repr=False)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)


def compile_text(text: str, filename: str = "<input>", *, optimize: bool = True) -> CompileResult:
    """Parse, check, optimize (unless ``optimize`` is False) and emit one plan per workflow."""
    from compiler.pipeline import run

    result = run(text, filename, optimize_level=1 if optimize else 0)
    return CompileResult(
        result.source,
        result.program,
        result.optimized,
        result.plans,
        result.diagnostics,
        result.passes,
    )
