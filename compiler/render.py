"""Rendering diagnostics for people (rich, with the source line and a caret) and for tools (JSON).

This is one of the edges where positions become text: everything before it passes
:class:`compiler.diagnostics.Diagnostic` records around.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.text import Text

from compiler.diagnostics import Diagnostic, Severity
from compiler.source import SourceFile

_STYLES = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.INFO: "bold blue",
    Severity.HINT: "bold cyan",
}


def to_json(diagnostic: Diagnostic, filename: str) -> dict[str, Any]:
    span = diagnostic.span
    out: dict[str, Any] = {
        "code": diagnostic.code,
        "severity": diagnostic.severity.value,
        "message": diagnostic.message,
        "file": filename,
        "line": span.line,
        "column": span.column,
        "end_line": span.end_line,
        "end_column": span.end_column,
    }
    if diagnostic.hint:
        out["hint"] = diagnostic.hint
    if diagnostic.fixes:
        out["fixes"] = [
            {
                "title": fix.title,
                "edits": [{**edit.span.to_json(), "text": edit.text} for edit in fix.edits],
            }
            for fix in diagnostic.fixes
        ]
    if diagnostic.related:
        out["related"] = [
            {**related.span.to_json(), "message": related.message} for related in diagnostic.related
        ]
    return out


def render_text(diagnostic: Diagnostic, source: SourceFile | None, filename: str) -> Text:
    """``file:line:col: severity[CODE]: message``, the source line, a caret, and the hint."""
    span = diagnostic.span
    out = Text()
    out.append(f"{filename}:{span.line}:{span.column}: ", style="bold")
    out.append(
        f"{diagnostic.severity.value}[{diagnostic.code}]", style=_STYLES[diagnostic.severity]
    )
    out.append(f": {diagnostic.message}\n", style="bold")
    if source is not None and source.text:
        line_text = source.line_text(span.line)
        gutter = f"{span.line:>4} | "
        out.append(gutter, style="blue")
        out.append(line_text.expandtabs(1) + "\n")
        width = (
            span.end_column - span.column
            if span.end_line == span.line
            else max(len(line_text) - span.column + 1, 1)
        )
        out.append(" " * (len(gutter) - 2) + "| ", style="blue")
        out.append(
            " " * (span.column - 1) + "^" * max(width, 1), style=_STYLES[diagnostic.severity]
        )
        out.append("\n")
    if diagnostic.hint:
        out.append("     = hint: ", style="bold cyan")
        out.append(diagnostic.hint + "\n")
    for related in diagnostic.related:
        out.append(
            f"     = note: {filename}:{related.span.line}:{related.span.column}: {related.message}\n",
            style="dim",
        )
    return out


def print_diagnostics(
    console: Console,
    diagnostics: Iterable[Diagnostic],
    source: SourceFile | None,
    filename: str,
) -> None:
    for diagnostic in diagnostics:
        console.print(
            render_text(diagnostic, source, filename), end="", soft_wrap=True, highlight=False
        )


def summary(errors: int, warnings: int, files: int) -> str:
    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return f"{plural(errors, 'error')}, {plural(warnings, 'warning')} in {plural(files, 'file')}"
