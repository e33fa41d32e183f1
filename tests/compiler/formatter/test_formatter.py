"""The formatter: fixture cases, idempotence and IR preservation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from compiler.api import front_end, ir_to_json
from compiler.formatter import format_text

CASES = Path(__file__).with_name("cases.md")
_CASE = re.compile(
    r"^## (?P<title>.+?)\n```dsql\n(?P<input>.*?)```\n```dsql\n(?P<output>.*?)```", re.S | re.M
)


def _cases() -> list[Any]:
    return [
        pytest.param(m["input"], m["output"], id=m["title"])
        for m in _CASE.finditer(CASES.read_text("utf-8"))
    ]


def _without_spans(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_spans(v) for k, v in value.items() if k != "span"}
    if isinstance(value, list):
        return [_without_spans(v) for v in value]
    return value


def ir_of(text: str) -> Any:
    return _without_spans(ir_to_json(front_end(text, "case.dsql").program))


def test_cases_file_has_cases() -> None:
    assert len(_cases()) >= 7


@pytest.mark.parametrize(("source", "expected"), _cases())
def test_format_case(source: str, expected: str) -> None:
    formatted = format_text(source, "case.dsql")
    assert formatted == expected
    assert format_text(formatted, "case.dsql") == formatted
    if not front_end(source, "case.dsql").has_errors:
        assert ir_of(formatted) == ir_of(source)


def test_examples_are_formatted() -> None:
    for path in sorted(Path("examples").glob("*.dsql")):
        text = path.read_text("utf-8")
        assert format_text(text, str(path)) == text, f"{path} is not in canonical format"
