"""Validation of plans against compiler/plan.schema.json, shared by the compiler's tests."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema


@cache
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(resources.files("compiler").joinpath("plan.schema.json").read_text("utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    result: jsonschema.protocols.Validator = cls(schema)
    return result


def assert_valid_plan(plan: dict[str, Any]) -> None:
    errors = list(validator().iter_errors(plan))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    ids = [node["id"] for node in plan["nodes"]]
    assert ids == [f"n{i}" for i in range(len(ids))], "ids are n0, n1, ... in table order"
    assert plan["root"] == "n0"
