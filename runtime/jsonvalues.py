"""JSON values as the runtime handles them: exact numbers, compact text, truthiness.

Numbers are read as ``int`` or ``Decimal`` so that a numeric column keeps every digit on its way
through a workflow (``1.50`` stays ``1.50``). Truthiness is pg_durable's (behaviour §7.1).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

JSON = Any  # a value made of dict, list, str, int, Decimal, bool and None


def loads(text: str | bytes) -> JSON:
    return json.loads(text, parse_float=Decimal)


def dumps(value: JSON) -> str:
    """Compact JSON text; ``Decimal`` numbers keep their digits."""
    return "".join(_encode(value))


def _encode(value: JSON) -> list[str]:
    out: list[str] = []
    _write(value, out)
    return out


def _write(value: JSON, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        out.append(_decimal_text(value))
    elif isinstance(value, float):
        out.append(json.dumps(value) if value == value and value not in (float("inf"), float("-inf")) else "null")
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _decimal_text(value: Decimal) -> str:
    if not value.is_finite():
        return "null"
    return str(value)


def is_truthy(value: JSON) -> bool:
    """pg_durable's ``is_truthy`` on one JSON value."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int | Decimal | float):
        return bool(value != 0)
    if isinstance(value, dict | list):
        return len(value) > 0
    text = str(value).strip().lower()
    if text == "":
        return False
    if text in ("true", "t", "yes"):
        return True
    if text in ("false", "f", "no"):
        return False
    if "_" not in text:
        try:
            return float(text) != 0
        except ValueError:
            pass
    return True


def condition_holds(result: JSON) -> bool:
    """Whether a condition node's result counts as true (behaviour §7.1)."""
    if isinstance(result, dict) and isinstance(result.get("rows"), list):
        rows = result["rows"]
        if not rows:
            return False
        first = rows[0]
        if isinstance(first, dict) and first:
            return is_truthy(next(iter(first.values())))
    return is_truthy(result)
