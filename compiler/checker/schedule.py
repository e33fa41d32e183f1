"""``df.wait_for_schedule``: standard five-field cron and IANA time zones (DFC503, DFC504).

The fields are minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC) and day
of week (0-7 or SUN-SAT, Sunday is 0 or 7); each is ``*`` or a list of values and ranges, with
an optional ``/step``. The checker reads the fields itself so that it can point at the bad one
and say why; ``@daily``-style shorthands get a quick fix to their five-field form.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from dataclasses import dataclass
from functools import cache

from compiler import ir
from compiler.checker.context import CheckContext
from compiler.diagnostics import Edit, Fix


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names for low, low+1, …


FIELDS = (
    Field("minute", 0, 59),
    Field("hour", 0, 23),
    Field("day of month", 1, 31),
    Field("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP",
                           "OCT", "NOV", "DEC")),
    Field("day of week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")),
)  # fmt: skip
SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_ITEM = re.compile(r"^(?:(\*)|([^-/]+)(?:-([^-/]+))?)(?:/(.*))?$")


@dataclass(frozen=True, slots=True)
class CronError:
    message: str
    start: int
    end: int
    hint: str | None = None


def check(ctx: CheckContext) -> None:
    for workflow in ctx.workflows:
        for node in ctx.of_kind(workflow, ir.WaitSchedule):
            assert isinstance(node, ir.WaitSchedule)
            _cron(ctx, node.cron)
            if node.time_zone is not None:
                _zone(ctx, node.time_zone)


def _cron(ctx: CheckContext, cron: ir.Text) -> None:
    text = cron.value
    shorthand = SHORTHANDS.get(text.strip().lower())
    if shorthand is not None:
        ctx.sink.add(
            "DFC503",
            cron.span,
            f"{text.strip()} is not a five-field cron expression",
            hint=f"Write it as '{shorthand}'.",
            fixes=(Fix(f"Use '{shorthand}'", (Edit(cron.span, f"'{shorthand}'"),)),),
        )
        return
    error = validate_cron(text)
    if error is not None:
        ctx.sink.add(
            "DFC503",
            ctx.span(cron, error.start, error.end),
            f"invalid cron expression: {error.message}",
            hint=error.hint
            or "Five fields: minute hour day-of-month month day-of-week, e.g. '0 9 * * 1-5'.",
        )


def validate_cron(text: str) -> CronError | None:
    """The first problem in a five-field cron expression, with its offsets, or None."""
    fields = [(m.start(), m.group(0)) for m in re.finditer(r"\S+", text)]
    if len(fields) != 5:
        end = max(len(text), 1)
        if len(fields) == 6:
            start = fields[5][0]
            return CronError(
                "6 fields; dfc reads standard five-field cron (no seconds or year field)",
                start,
                start + len(fields[5][1]),
            )
        return CronError(
            f"{len(fields)} field{'s' if len(fields) != 1 else ''}, expected 5", 0, end
        )
    for (start, value), spec in zip(fields, FIELDS, strict=True):
        error = _field(value, spec)
        if error is not None:
            message, offset, length, hint = error
            return CronError(
                f"{spec.name} field {value!r}: {message}",
                start + offset,
                start + offset + length,
                hint,
            )
    return None


def _field(value: str, spec: Field) -> tuple[str, int, int, str | None] | None:
    offset = 0
    for item in value.split(","):
        error = _item(item, spec)
        if error is not None:
            return error[0], offset + error[1], error[2], error[3]
        offset += len(item) + 1
    return None


def _item(item: str, spec: Field) -> tuple[str, int, int, str | None] | None:
    if not item:
        return "empty list entry", 0, 1, None
    if item == "?":
        return (
            "? is not standard cron",
            0,
            1,
            "Use * (dfc reads standard five-field cron).",
        )
    match = _ITEM.match(item)
    if match is None:
        return f"cannot read {item!r}", 0, len(item), None
    star, first, last, step = match.groups()
    low = high = None
    if not star:
        assert first is not None
        low = _value(first, spec)
        if low is None:
            return _bad_value(first, spec, 0)
        if last is not None:
            high = _value(last, spec)
            if high is None:
                return _bad_value(last, spec, len(first) + 1)
            if high < low:
                return (
                    f"range {first}-{last} runs backwards",
                    0,
                    len(first) + 1 + len(last),
                    f"Write the smaller value first, e.g. {last}-{first}.",
                )
    if step is not None:
        at = item.index("/") + 1
        if not step.isdigit() or int(step) < 1:
            return "a step must be a whole number of at least 1", at, max(len(step), 1), None
        if int(step) > spec.high - spec.low + 1 + (spec.low == 0):
            return f"step {step} is larger than the field's range", at, len(step), None
    return None


def _bad_value(text: str, spec: Field, at: int) -> tuple[str, int, int, str | None]:
    allowed = f"{spec.low}-{spec.high}"
    if spec.names:
        allowed += f" or {spec.names[0]}-{spec.names[-2 if spec.name == 'day of week' else -1]}"
    hint = None
    if spec.name == "day of week":
        hint = "Sunday is 0 or 7, Monday 1, ..., Saturday 6."
    return f"{text!r} is not a valid value ({allowed})", at, len(text), hint


def _value(text: str, spec: Field) -> int | None:
    if text.isdigit():
        number = int(text)
        return number if spec.low <= number <= spec.high else None
    upper = text.upper()
    if upper in spec.names:
        return spec.low + spec.names.index(upper)
    return None


def _zone(ctx: CheckContext, zone: ir.Text) -> None:
    name = zone.value.strip()
    if is_time_zone(name):
        return
    close = difflib.get_close_matches(name, sorted(_zones()), n=1, cutoff=0.6)
    ctx.sink.add(
        "DFC504",
        zone.span,
        f"unknown time zone {zone.value!r}",
        hint=(f"Did you mean {close[0]}? " if close else "")
        + "Use an IANA time zone name such as 'Europe/Paris' or 'UTC'.",
        fixes=(Fix(f"Use {close[0]}", (Edit(zone.span, f"'{close[0]}'"),)),) if close else (),
    )


@cache
def is_time_zone(name: str) -> bool:
    if not name or name.startswith("/") or ".." in name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
