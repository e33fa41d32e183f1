"""Compiling .dsql files for the runtime's commands (through the compiler's public API)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from runtime.target import RuntimeProblem


def compile_file(path: str, console: Console) -> list[dict[str, Any]]:
    """The plans of a .dsql file; prints diagnostics; raises when the file has errors."""
    from compiler.api import compile_text, read_source
    from compiler.render import print_diagnostics

    text, failure = read_source(path)
    if failure is not None or text is None:
        print_diagnostics(console, [failure] if failure else [], None, path)
        raise RuntimeProblem("DFC805", f"cannot read {path}")
    result = compile_text(text, path)
    if result.diagnostics:
        print_diagnostics(console, result.diagnostics, result.source, path)
    if result.has_errors:
        raise RuntimeProblem("DFC806", f"{path} has errors; nothing was installed or started",
                             f"run `dfc check {path}` for details")
    if not result.plans:
        raise RuntimeProblem("DFC807", f"{path} contains no workflow")
    return result.plans
