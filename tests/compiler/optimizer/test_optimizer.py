"""Optimizer passes: their docstring examples, fixture pairs, and what they must not change."""

from __future__ import annotations

import doctest
import importlib

import pytest

from compiler import optimizer
from compiler.api import compile_text
from compiler.optimizer import RULES, optimize
from compiler.optimizer.tree import show, step
from tests.compiler.emit.plan_schema import assert_valid_plan

PASS_MODULES = [f"compiler.optimizer.{rule.__name__}" for rule in RULES]


@pytest.mark.parametrize("module_name", PASS_MODULES)
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0, f"{module_name} has no example"
    assert failures == 0


@pytest.mark.parametrize("module_name", PASS_MODULES)
def test_one_pass_per_module_named_like_it(module_name: str) -> None:
    module = importlib.import_module(module_name)
    name = module_name.rsplit(".", 1)[1]
    assert callable(getattr(module, name))
    assert module.__doc__


def test_order_is_written_once() -> None:
    assert [rule.__name__ for rule in optimizer.RULES] == [
        "fold_conditions",
        "remove_unreachable",
        "flatten",
        "merge_sleeps",
    ]


CASES = [
    # (pass, input, expected)
    ("flatten", "('a' ~> 'b') ~> ('c' ~> 'd')", "'a' ~> 'b' ~> 'c' ~> 'd'"),
    ("flatten", "('a' ~> 'b') |=> 'x' ~> 'c'", "(('a' ~> 'b') |=> 'x') ~> 'c'"),
    ("flatten", "('a' | 'b') |=> 'r' | 'c'", "(('a' | 'b') |=> 'r') | 'c'"),
    ("flatten", "(('a' & 'b') & 'c') |=> 'j'", "(('a' & 'b') & 'c') |=> 'j'"),
    ("flatten", "df.loop(('a' & ('b' & 'c')) ~> 'd')", "@> (('a' & 'b' & 'c') ~> 'd')"),
    ("flatten", "df.loop('a' & ('b' & 'c'))", "@> ('a' & ('b' & 'c'))"),
    ("fold_conditions", "'SELECT 1 = 1 AND NOT false' ?> 'a' !> 'b'", "'a'"),
    ("fold_conditions", "'SELECT 0' ?> 'a' !> 'b'", "'b'"),
    ("fold_conditions", "'SELECT NULL' ?> 'a' !> 'b'", "'b'"),
    ("fold_conditions", "'SELECT ''yes''' ?> 'a' !> 'b'", "'a'"),
    ("fold_conditions", "'SELECT ''t''::boolean' ?> 'a' !> 'b'", "'a'"),
    ("fold_conditions", "'SELECT 1 WHERE false' ?> 'a' !> 'b'", "'b'"),
    ("fold_conditions", "'SELECT 2 + 3 > 4' ?> 'a' !> 'b'", "'a'"),
    (
        "fold_conditions",
        "'SELECT now() > now()' ?> 'a' !> 'b'",
        "'SELECT now() > now()' ?> 'a' !> 'b'",
    ),
    (
        "fold_conditions",
        "'SELECT 2147483647 + 1 > 0' ?> 'a' !> 'b'",
        "'SELECT 2147483647 + 1 > 0' ?> 'a' !> 'b'",
    ),
    (
        "fold_conditions",
        "('SELECT true' |=> 'c') ?> 'a' !> 'b'",
        "('SELECT true' |=> 'c') ?> 'a' !> 'b'",
    ),
    (
        "fold_conditions",
        "('SELECT true' ?> ('a' |=> 'x') !> 'b') |=> 'y'",
        "(('a' |=> 'x')) |=> 'y'",
    ),
    ("fold_conditions", "('SELECT true' ?> df.sleep(1) !> 'b') |=> 'y'", "(df.sleep(1)) |=> 'y'"),
    ("fold_conditions", "'x' ~> ('SELECT false' ?> 'a')", "'x' ~> ('SELECT false' ?> 'a')"),
    ("fold_conditions", "'SELECT 1 > 0' ?> 'a'", "'a'"),
    ("remove_unreachable", "(@> 'a') ~> 'b' ~> 'c'", "@> 'a'"),
    ("remove_unreachable", "((@> 'a') & 'b') ~> 'c'", "(@> 'a') & 'b'"),
    ("remove_unreachable", "((@> 'a') | 'b') ~> 'c'", "((@> 'a') | 'b') ~> 'c'"),
    (
        "remove_unreachable",
        "df.loop('a', 'SELECT false') ~> 'c'",
        "df.loop('a', 'SELECT false') ~> 'c'",
    ),
    ("merge_sleeps", "df.sleep(1) ~> df.sleep(2) ~> df.sleep(3) ~> 'a'", "df.sleep(6) ~> 'a'"),
    (
        "merge_sleeps",
        "df.sleep(1) |=> 's' ~> df.sleep(2) ~> 'a'",
        "(df.sleep(1) |=> 's') ~> df.sleep(2) ~> 'a'",
    ),
    ("merge_sleeps", "(df.sleep(1) ~> df.sleep(2)) ~> 'a'", "df.sleep(3) ~> 'a'"),
]


@pytest.mark.parametrize(
    ("name", "source", "expected"), CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES]
)
def test_pass(name: str, source: str, expected: str) -> None:
    rule = next(r for r in RULES if r.__name__ == name)
    before = step(source)
    after = rule(before)
    assert show(after) == expected
    if show(before) == expected:
        assert after is before, "a pass that changes nothing returns its input"


def test_passes_keep_names_that_can_still_be_bound() -> None:
    source = (
        "SELECT df.start(('SELECT 1 > 0' ?> ('SELECT 1 AS v' |=> 'v') !> 'SELECT 2') ~> "
        "'SELECT $v.v?' ~> df.sleep(1) ~> df.sleep(2) ~> 'SELECT 3', 'w');"
    )
    plan = compile_text(source, "w.dsql").plans[0]
    assert list(plan["bindings"]) == ["v"]
    assert [n["kind"] for n in plan["nodes"]] == ["seq", "sql", "sql", "sleep", "sql"]
    assert_valid_plan(plan)


def test_O0_keeps_the_program_as_written() -> None:
    source = "'a' ~> ('b' ~> 'c') ~> df.sleep(1) ~> df.sleep(2) ~> 'SELECT 1'"
    result = compile_text(
        "'SELECT 1' ~> ('SELECT 2' ~> df.sleep(1) ~> df.sleep(2)) ~> 'SELECT 3'",
        "x.dsql",
        optimize=False,
    )
    assert result.optimized == result.program
    assert len(result.plans[0]["nodes"]) == 7
    assert source


def test_optimize_logs_every_pass() -> None:
    result = compile_text("'SELECT 1' ~> ('SELECT 2' ~> 'SELECT 3')", "x.dsql")
    assert [(r.name, r.changed) for r in result.passes] == [
        ("fold_conditions", False),
        ("remove_unreachable", False),
        ("flatten", True),
        ("merge_sleeps", False),
    ]


def test_optimize_is_idempotent() -> None:
    source = (
        "(@> ('SELECT true' ?> df.break())) ~> ('a' ~> ('b' ~> df.sleep(1) ~> df.sleep(2) ~> 'c'))"
    )
    from compiler.api import front_end

    program = front_end(source, "x.dsql").program
    once = optimize(program)
    assert optimize(once) == once


def test_fast_walk_matches_the_ir() -> None:
    from compiler import ir
    from compiler.irwalk import CHILD_FIELDS, children, walk

    assert set(CHILD_FIELDS) == set(ir.NODE_TYPES.values())
    root = step(
        "(@> ('SELECT 1' ~> df.break())) ~> df.if_rows('x', 'a', 'b') ~> "
        "df.retry(df.timeout('c' <-> 'd', 5), 2) ~> ('e' & 'f' | 'g') ~> df.loop('h', 'i')"
    )
    assert list(walk(root)) == list(root.walk())
    for node in root.walk():
        assert children(node) == list(node.children())
