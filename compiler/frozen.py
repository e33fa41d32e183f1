"""Frozen dataclasses that are quick to build.

A frozen dataclass's generated ``__init__`` sets each field through ``object.__setattr__``
(to get past its own ``__setattr__``, which refuses), a generic attribute lookup per field that
made building a span or an IR node cost a microsecond or more; the compiler builds hundreds of
thousands of them on a large file. :func:`quick_init` gives such a class an ``__init__`` with
the same signature that stores the fields directly: through the slot descriptors of a slotted
class, or into the instance dictionary of a plain one. Everything else (equality, hashing,
``replace``, refusing assignment after construction) stays as the dataclass made it.

Where even that is too slow (a span per rule the parser reduces), :func:`factory` makes a
function that builds instances of a slotted class about twice as fast again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Replace the ``__init__`` of frozen dataclass ``cls`` by one that stores fields directly.

    Apply it above ``@dataclass``. Fields may have plain defaults, not default factories;
    ``__post_init__`` is not supported.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} is not a frozen dataclass without __post_init__")
    fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {}
    positional: list[str] = []
    keyword: list[str] = []
    for field in fields:
        if field.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{field.name}: default factories are not supported")
        parameter = field.name
        if field.default is not dataclasses.MISSING:
            namespace[f"_default_{field.name}"] = field.default
            parameter += f"=_default_{field.name}"
        (keyword if field.kw_only else positional).append(parameter)
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    slotted = "__slots__" in cls.__dict__
    lines = [f"def __init__({signature}):"]
    if slotted:
        for field in fields:
            namespace[f"_set_{field.name}"] = getattr(cls, field.name).__set__
            lines.append(f"    _set_{field.name}(self, {field.name})")
    elif fields:
        # Item by item into the fresh instance dictionary, in field order, without a
        # temporary dictionary.
        lines.append("    __state = self.__dict__")
        lines.extend(f"    __state[{f.name!r}] = {f.name}" for f in fields)
    if not fields:
        lines.append("    pass")
    exec("\n".join(lines), namespace)  # the source is built above from the field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010 - mypy refuses assigning to a method
    return cls


def evolve(instance: T, **changes: Any) -> T:
    """``dataclasses.replace`` for an instance of a :func:`quick_init` class without slots.

    The copy gets the instance's fields with ``changes`` applied, without running
    ``__init__`` again (there is no ``__post_init__`` to run).
    """
    fields: dict[str, Any] = instance.__dict__
    copy = object.__new__(type(instance))
    state = copy.__dict__
    state.update(fields, **changes)
    if len(state) != len(fields):  # a change named no field (checked after: it is rare)
        unknown = ", ".join(sorted(changes.keys() - fields.keys()))
        raise TypeError(f"{type(instance).__name__} has no field {unknown}")
    return copy


def factory(cls: type[T]) -> Callable[..., T]:
    """A function that builds an instance of frozen dataclass ``cls`` from all its fields.

    It takes every field positionally, in order (keyword-only and defaulted ones too), and
    makes what ``cls(...)`` makes, without the keyword handling of a call of the class or,
    for a slotted class, the frozen class's refusal of attribute assignment: there the fields
    are stored on an instance of an unfrozen twin class with the very same slots, which then
    becomes a ``cls`` (CPython allows ``__class__`` assignment between classes of the same
    layout). A class without slots gets its instance dictionary filled in field order.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} is not a frozen dataclass without __post_init__")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if any(not f.init for f in fields):
        raise TypeError(f"{cls.__name__}: every field must be set by __init__")
    names = [f.name for f in fields]
    slots = cls.__dict__.get("__slots__")
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    if slots is not None:
        if tuple(slots) != tuple(names):
            raise TypeError(f"{cls.__name__}: the slots must be the fields, in order")
        namespace["twin"] = type(f"_{cls.__name__}Fields", (), {"__slots__": tuple(slots)})
        body = ["made = new(twin)", *(f"made.{n} = {n}" for n in names), "made.__class__ = cls"]
    else:
        body = ["made = new(cls)", "state = made.__dict__", *(f"state[{n!r}] = {n}" for n in names)]
    lines = [f"def make({', '.join(names)}):", *(f"    {line}" for line in body), "    return made"]
    exec("\n".join(lines), namespace)  # the source is built above from the field names
    make: Callable[..., T] = namespace["make"]
    make.__qualname__ = make.__name__ = f"make_{cls.__name__}"
    make.__doc__ = f"A {cls.__name__} from all its fields, in order (compiler.frozen.factory)."
    return make
