"""The df.* function catalogue, read from ``grammar/catalogue.json`` once.

The JSON file is the single source of truth for function names, parameters, types,
defaults, argument roles and docs; the parser binds call arguments with it, the checker reads
result shapes from it, the language server serves its docs and the VS Code extension builds
its snippets from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

ParamType = Literal["step", "sql", "text", "name", "integer", "number", "jsonb", "boolean"]
Category = Literal["node", "statement", "management"]

_NO_DEFAULT: Any = object()


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: ParamType
    doc: str
    default: Any = _NO_DEFAULT
    format: str | None = None
    extension: bool = False

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT

    def signature(self) -> str:
        text = f"{self.name} {self.type}"
        if not self.required:
            text += f" DEFAULT {_sql_default(self.default)}"
        return text


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    category: Category
    doc: str
    params: tuple[Param, ...]
    extension: bool = False
    node: str | None = None
    operator: str | None = None
    result_fields: tuple[str, ...] | None = None
    returns: str | None = None

    @property
    def qualified_name(self) -> str:
        return f"df.{self.name}"

    def param(self, name: str) -> Param | None:
        for param in self.params:
            if param.name == name:
                return param
        return None

    def signature(self) -> str:
        return f"df.{self.name}({', '.join(p.signature() for p in self.params)})"


@dataclass(frozen=True, slots=True)
class Operator:
    token: str
    name: str
    function: str
    doc: str


@dataclass(frozen=True, slots=True)
class SystemVariable:
    name: str
    doc: str


@dataclass(frozen=True, slots=True)
class Catalogue:
    functions: dict[str, Function]
    operators: tuple[Operator, ...]
    system_variables: tuple[SystemVariable, ...]

    def get(self, name: str) -> Function | None:
        return self.functions.get(name)

    def by_category(self, category: Category) -> list[Function]:
        return [f for f in self.functions.values() if f.category == category]


def _sql_default(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _param(raw: dict[str, Any]) -> Param:
    return Param(
        name=raw["name"],
        type=raw["type"],
        doc=raw.get("doc", ""),
        default=raw.get("default", _NO_DEFAULT),
        format=raw.get("format"),
        extension=bool(raw.get("extension", False)),
    )


def _function(raw: dict[str, Any]) -> Function:
    fields = raw.get("result_fields")
    return Function(
        name=raw["name"],
        category=raw["category"],
        doc=raw.get("doc", ""),
        params=tuple(_param(p) for p in raw["params"]),
        extension=bool(raw.get("extension", False)),
        node=raw.get("node"),
        operator=raw.get("operator"),
        result_fields=tuple(fields) if fields is not None else None,
        returns=raw.get("returns"),
    )


def catalogue_text() -> str:
    """The raw JSON text of the catalogue (for tools that ship it elsewhere)."""
    return resources.files("grammar").joinpath("catalogue.json").read_text("utf-8")


@cache
def load() -> Catalogue:
    raw = json.loads(catalogue_text())
    return Catalogue(
        functions={f["name"]: _function(f) for f in raw["functions"]},
        operators=tuple(Operator(**o) for o in raw["operators"]),
        system_variables=tuple(SystemVariable(**v) for v in raw["system_variables"]),
    )
