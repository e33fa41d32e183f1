"""quick_init and factory: the same constructor as the dataclass's own, only quicker."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass

import pytest

from compiler import ir
from compiler.frozen import evolve, factory, quick_init
from compiler.source import Span


@quick_init
@dataclass(frozen=True, slots=True)
class _Slotted:
    a: int
    b: str = "b"


@quick_init
@dataclass(frozen=True, kw_only=True)
class _Plain:
    a: int
    b: tuple[int, ...] = ()


def test_slotted_class_keeps_signature_defaults_and_immutability() -> None:
    assert _Slotted(1) == _Slotted(a=1, b="b")
    assert _Slotted(1, "x").b == "x"
    assert hash(_Slotted(1)) == hash(_Slotted(1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        _Slotted(1).a = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        _Slotted()  # type: ignore[call-arg]


def test_plain_class_keeps_keyword_only_fields() -> None:
    assert _Plain(a=1) == _Plain(a=1, b=())
    assert dataclasses.replace(_Plain(a=1), b=(2,)).b == (2,)
    with pytest.raises(TypeError):
        _Plain(1)  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError):
        _Plain(a=1).a = 2  # type: ignore[misc]


def test_ir_nodes_and_spans_build_as_before() -> None:
    span = Span(0, 3, 1, 1, 1, 4)
    node = ir.Sql(span=span, sql=ir.Text(value="a", span=span, breaks=((0, 1),)))
    assert node.bind is None and node.sql.value == "a"
    assert dataclasses.replace(node, bind=ir.Name(value="x", span=span)).bind is not None
    assert repr(span) == "Span(start=0, end=3, line=1, column=1, end_line=1, end_column=4)"


def test_refuses_what_it_cannot_reproduce() -> None:
    @dataclass(frozen=True)
    class WithPostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass
    class NotFrozen:
        a: int

    for cls in (WithPostInit, NotFrozen):
        with pytest.raises(TypeError):
            quick_init(cls)


def test_evolve_is_replace_for_plain_classes() -> None:
    span = Span(0, 3, 1, 1, 1, 4)
    node = ir.Sql(span=span, sql=ir.Text(value="a", span=span, breaks=()))
    name = ir.Name(value="x", span=span)
    assert evolve(node, bind=name) == dataclasses.replace(node, bind=name)
    assert node.bind is None
    with pytest.raises(TypeError):
        evolve(node, nonsense=1)


def test_factory_makes_what_the_class_makes() -> None:
    make = factory(Span)
    made = make(0, 3, 1, 1, 1, 4)
    expected = Span(0, 3, 1, 1, 1, 4)
    assert type(made) is Span
    assert made == expected and hash(made) == hash(expected) and repr(made) == repr(expected)
    assert copy.deepcopy(made) == expected
    assert pickle.loads(pickle.dumps(made)) == expected
    assert dataclasses.replace(made, end=4) == Span(0, 4, 1, 1, 1, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.start = 1  # type: ignore[misc]


def test_factory_builds_a_plain_class_from_all_its_fields() -> None:
    make = factory(_Plain)
    made = make(1, (2,))
    assert type(made) is _Plain and made == _Plain(a=1, b=(2,))
    assert list(made.__dict__) == list(_Plain(a=1).__dict__)
    span = Span(0, 3, 1, 1, 1, 4)
    text = ir.Text(value="a", span=span, breaks=((0, 1),))
    assert factory(ir.Sql)(span, None, text) == ir.Sql(span=span, sql=text)


def test_factory_refuses_classes_it_cannot_build() -> None:
    @dataclass(slots=True)
    class Mutable:
        a: int

    with pytest.raises(TypeError):
        factory(Mutable)
