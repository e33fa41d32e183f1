"""The emitter's orjson hash gives the bytes of the canonical encoder, or is not used."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.api import compile_text
from compiler.emit import _quick_hash, orjson_spells_like_json, plan_hash

# Every JSON value a plan can hold, floats of all spellings included.
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, list):
        return [f for item in value for f in _floats(item)]
    if isinstance(value, dict):
        return [f for item in value.values() for f in _floats(item)]
    return []


@settings(max_examples=3000, deadline=None)
@given(_values)
def test_quick_hash_matches_the_definition(value: Any) -> None:
    plan = {"nodes": value, "hash": "", "compiler": "dfc 0"}
    if all(orjson_spells_like_json(f) for f in _floats(value)):
        assert _quick_hash(plan) == plan_hash(plan)


@pytest.mark.parametrize(
    ("value", "same"),
    [(0.5, True), (123.25, True), (1e-05, False), (1e16, False), (math.nan, False),
     (math.inf, False), (-math.inf, False), (1e-4, True)],
)
def test_floats_orjson_spells_differently_are_recognised(value: float, same: bool) -> None:
    assert orjson_spells_like_json(value) is same


@pytest.mark.parametrize(
    "source",
    [
        "SELECT df.start(df.retry('SELECT 1', 3, 0.00001), 'tiny');",
        "SELECT df.start(df.retry('SELECT 1', 3, 1.5, 2.5, 1e16), 'huge');",
        "SELECT df.start(df.timeout('SELECT 1', 0.25), 'quarter');",
    ],
)
def test_plans_with_any_float_hash_by_the_definition(source: str) -> None:
    result = compile_text(source, "f.dsql")
    assert not [d for d in result.diagnostics if d.is_error], result.diagnostics
    plan = result.plans[0]
    assert plan["hash"] == plan_hash(plan)
