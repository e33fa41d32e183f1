"""Server settings: ``initializationOptions`` and workspace configuration as a typed dataclass.

Clients send settings as loose JSON (the VS Code extension sends ``{"dsn": …}``; other clients
may nest them under ``"dfc"`` or use dotted keys). :func:`parse_settings` accepts those shapes,
keeps every valid value, replaces every invalid one by its default and returns one message per
problem, which the server shows to the user — a bad setting never stops the server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DEBOUNCE_MS = 20


@dataclass(frozen=True, slots=True)
class Settings:
    """What the server can be told. ``dsn`` None means: work without a database."""

    dsn: str | None = None
    debounce_ms: int = DEFAULT_DEBOUNCE_MS
    workspace_symbols: bool = True


@dataclass
class ParsedSettings:
    settings: Settings
    problems: list[str] = field(default_factory=list)


_KEYS = {
    "dsn": "dsn",
    "debounce_ms": "debounce_ms",
    "debounceMs": "debounce_ms",
    "workspace_symbols": "workspace_symbols",
    "workspaceSymbols": "workspace_symbols",
}


def _flatten(raw: Any) -> dict[str, Any]:
    """``{"dfc": {"dsn": x}}``, ``{"dfc.dsn": x}`` and ``{"dsn": x}`` all become ``{"dsn": x}``."""
    if not isinstance(raw, dict):
        return {}
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            continue
        if key == "dfc" and isinstance(value, dict):
            flat.update(_flatten(value))
        elif key.startswith("dfc."):
            flat[key[4:]] = value
        else:
            flat[key] = value
    return flat


def parse_settings(raw: Any, environ: dict[str, str] | None = None) -> ParsedSettings:
    """Typed settings from client JSON; ``DFC_DSN`` supplies the DSN when the client does not."""
    environ = dict(os.environ) if environ is None else environ
    problems: list[str] = []
    if raw is not None and not isinstance(raw, dict):
        problems.append(
            f"dfc: settings must be a JSON object, got {type(raw).__name__}; using defaults."
        )
    values = _flatten(raw)
    dsn: str | None = None
    debounce = DEFAULT_DEBOUNCE_MS
    workspace_symbols = True
    for key, value in values.items():
        name = _KEYS.get(key)
        if name == "dsn":
            if value is None or value == "":
                continue
            if isinstance(value, str):
                dsn = value.strip()
            else:
                problems.append("dfc.dsn must be a connection string; working without a database.")
        elif name == "debounce_ms":
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10_000:
                debounce = value
            else:
                problems.append(
                    f"dfc.debounceMs must be a whole number of milliseconds between 0 and 10000; "
                    f"using {DEFAULT_DEBOUNCE_MS}."
                )
        elif name == "workspace_symbols":
            if isinstance(value, bool):
                workspace_symbols = value
            else:
                problems.append("dfc.workspaceSymbols must be true or false; using true.")
    if dsn is None and environ.get("DFC_DSN"):
        dsn = environ["DFC_DSN"]
    return ParsedSettings(Settings(dsn, debounce, workspace_symbols), problems)
