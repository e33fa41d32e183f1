"""Cron expressions in words, and when they fire next (for hovering a ``df.wait_for_schedule``).

dfc's cron is standard five-field cron (DSL.md §5: minute hour day-of-month month day-of-week,
Sunday = 0 or 7, names allowed), read in UTC unless a time zone is given. :func:`describe`
renders the common shapes in plain English and falls back to naming each field; the next fire
times come from croniter, the library the runtime schedules with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = [
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAY_NAMES = {d[:3].lower(): i for i, d in enumerate(_DAYS[:7])}
_MONTH_NAMES = {m[:3].lower(): i for i, m in enumerate(_MONTHS) if m}


def _value(text: str, names: dict[str, int]) -> int:
    lowered = text.lower()
    return names[lowered] if lowered in names else int(text)


def _list(field: str, render: dict[int, str] | list[str], names: dict[str, int]) -> str:
    """A comma list of values and ranges, each rendered through ``render``."""
    parts = []
    for item in field.split(","):
        step = ""
        if "/" in item:
            item, every = item.split("/", 1)
            step = f" (every {every})"
        if item == "*":
            parts.append("every value" + step)
        elif "-" in item:
            low, high = item.split("-", 1)
            parts.append(
                f"{render[_value(low, names)]} through {render[_value(high, names)]}{step}"
            )
        else:
            parts.append(render[_value(item, names)] + step)
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return parts[0]


def _time(minute: str, hour: str) -> str:
    if minute.isdigit() and hour.isdigit():
        return f"at {int(hour):02d}:{int(minute):02d}"
    if minute == "*" and hour == "*":
        return "every minute"
    if minute.startswith("*/") and hour == "*":
        return f"every {minute[2:]} minutes"
    if minute.isdigit() and hour == "*":
        return f"at minute {int(minute)} past every hour"
    if minute.isdigit() and hour.startswith("*/"):
        return f"at minute {int(minute)} past every {hour[2:]} hours"
    numbers = {i: str(i) for i in range(60)}
    minutes = "every minute" if minute == "*" else f"at minute {_list(minute, numbers, {})}"
    hours = "" if hour == "*" else f" past hour {_list(hour, numbers, {})}"
    return minutes + hours


def describe(expression: str) -> str:
    """Plain English for a five-field cron expression (raises ValueError when malformed)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a cron expression has 5 fields, this one has {len(fields)}")
    minute, hour, dom, month, dow = fields
    try:
        text = _time(minute, hour)
        if dom != "*":
            text += f", on day {_list(dom, {i: str(i) for i in range(32)}, {})} of the month"
        if month != "*":
            text += f", in {_list(month, dict(enumerate(_MONTHS)), _MONTH_NAMES)}"
        if dow != "*":
            joiner = " or on " if dom != "*" else ", on "
            text += joiner + _list(dow, dict(enumerate(_DAYS)), _DAY_NAMES)
    except (KeyError, ValueError) as error:
        raise ValueError(f"cannot read {expression!r}: {error}") from error
    return text[0].upper() + text[1:]


def next_times(
    expression: str, time_zone: str | None = None, count: int = 3, now: datetime | None = None
) -> list[datetime]:
    """The next ``count`` times the expression fires, in ``time_zone`` (UTC by default)."""
    try:
        zone = ZoneInfo(time_zone) if time_zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    start = (now or datetime.now(UTC)).astimezone(zone)
    iterator = croniter(expression, start)
    return [iterator.get_next(datetime) for _ in range(count)]
