"""Standard five-field cron: when does ``df.wait_for_schedule(cron [, time_zone])`` fire next?

The syntax is the one the compiler's checker validates (:mod:`compiler.checker.schedule`, reused
here so that the compiler and the runtime accept exactly the same expressions): minute, hour, day
of month, month (1-12 or JAN-DEC), day of week (0-7 or SUN-SAT; Sunday is 0 or 7); each field a
``*`` or a comma list of values and ranges, each with an optional ``/step``.

Semantics are Vixie cron's (crontab(5)):

* When both day of month and day of week are *restricted* — their text does not start with
  ``*`` — a day matches when **either** matches (``0 0 1 * 1`` = the 1st and every Monday).
  Otherwise both must match, which means only the restricted one counts. A field written
  ``*/2`` starts with ``*`` and therefore counts as unrestricted for this rule, as in Vixie cron.
* Times are read in UTC unless an IANA time zone is given. Daylight-saving changes:

  - a wall-clock time that does not exist (spring forward) fires at the moment the clocks jump
    when the hour field is fixed (``30 2 * * *`` fires at 03:00 on that day), and is skipped when
    the hour field starts with ``*`` (those jobs follow real time: the hour was never lived);
  - a wall-clock time that happens twice (fall back) fires once, at its first occurrence, when
    the hour field is fixed, and at both occurrences when the hour field starts with ``*``
    (``*/15 * * * *`` keeps firing every 15 minutes of real time through the repeated hour).

  These are ISC cron's rules.
* ``next_fire`` is strictly after the given instant, so a worker that was down across several
  fire times fires once when it is back (the caller asks for the next fire time after *now*),
  never once per missed tick.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

from compiler.checker.schedule import FIELDS, SHORTHANDS, Field, is_time_zone, validate_cron

# A restricted day that never comes (``0 0 30 2 *``) must not loop forever; every satisfiable
# expression fires within 28 years (the Gregorian weekday/leap cycle).
SEARCH_YEARS = 28

_ITEM = re.compile(r"^(?:(\*)|([^-/]+)(?:-([^-/]+))?)(?:/(\d+))?$")


class CronError(ValueError):
    """A cron expression or time zone the runtime cannot use; the message says why."""


@dataclass(frozen=True)
class Schedule:
    """A parsed cron expression."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    day_or: bool  # both day fields restricted: either may match
    hour_star: bool  # hour field follows real time across DST changes

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        return (dom or dow) if self.day_or else (dom and dow)


def _value(text: str, spec: Field) -> int:
    if text.isdigit():
        return int(text)
    return spec.low + spec.names.index(text.upper())


def _expand(text: str, spec: Field) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if match is None:  # validate_cron has vetted the text
            raise CronError(f"cannot read {item!r}")
        star, first, last, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if star:
            low, high = spec.low, spec.high
        else:
            low = _value(first, spec)
            # Vixie cron: "N/step" runs from N to the end of the field
            high = _value(last, spec) if last is not None else (spec.high if step_text else low)
        values.update(range(low, high + 1, step))
    return values


@lru_cache(maxsize=1024)
def parse(expression: str) -> Schedule:
    """Parse a five-field cron expression (raises :class:`CronError`)."""
    text = expression.strip()
    shorthand = SHORTHANDS.get(text.lower())
    if shorthand is not None:
        raise CronError(f"{text} is not a five-field cron expression; write it as '{shorthand}'")
    error = validate_cron(text)
    if error is not None:
        raise CronError(f"invalid cron expression '{expression}': {error.message}")
    fields = text.split()
    minute, hour, dom, month, dow = (
        _expand(field, spec) for field, spec in zip(fields, FIELDS, strict=True)
    )
    weekdays = frozenset(day % 7 for day in dow)  # 7 is Sunday too
    return Schedule(
        expression=text,
        minutes=tuple(sorted(minute)),
        hours=tuple(sorted(hour)),
        days=frozenset(dom),
        months=frozenset(month),
        weekdays=weekdays,
        day_or=not fields[2].startswith("*") and not fields[4].startswith("*"),
        hour_star=fields[1].startswith("*"),
    )


@lru_cache(maxsize=256)
def zone_info(name: str | None) -> tzinfo:
    """The time zone called ``name`` (``None`` or empty = UTC; raises :class:`CronError`)."""
    if name is None or not name.strip() or name.strip().upper() == "UTC":
        return UTC
    if not is_time_zone(name.strip()):
        raise CronError(f"unknown time zone '{name}': use an IANA name such as 'Europe/Paris'")
    return zoneinfo.ZoneInfo(name.strip())


def next_fire(expression: str, after: datetime, zone: str | None = None) -> datetime:
    """The first fire time strictly after ``after`` (aware), as an aware UTC datetime."""
    if after.tzinfo is None:
        raise ValueError("next_fire needs a timezone-aware instant")
    schedule = parse(expression)
    tz = zone_info(zone)
    after_utc = after.astimezone(UTC)
    # Candidates of one local day can land up to a few hours either side of it (DST jumps),
    # so start a day early and keep the earliest candidate past ``after``.
    day = after_utc.astimezone(tz).date() - timedelta(days=1)
    last_day = day + timedelta(days=366 * SEARCH_YEARS)
    best: datetime | None = None
    floor = after_utc.astimezone(tz).replace(tzinfo=None) - _DST_MARGIN
    while day <= last_day:
        if best is not None and datetime.combine(day, time()) > _local(best, tz) + _DST_MARGIN:
            break
        if schedule.day_matches(day):
            found = _first_after(schedule, day, tz, after_utc, floor)
            if found is not None and (best is None or found < best):
                best = found
        day += timedelta(days=1)
    if best is None:
        raise CronError(f"cron expression '{expression}' never fires (no such day)")
    return best


def _local(instant: datetime, tz: tzinfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


# Daylight-saving changes move wall-clock times by at most a few hours.
_DST_MARGIN = timedelta(hours=4)


def _first_after(schedule: Schedule, day: date, tz: tzinfo, after: datetime,
                 floor: datetime) -> datetime | None:
    """The earliest fire instant of one local day that is later than ``after``."""
    best: datetime | None = None
    stop: datetime | None = None
    for hour in schedule.hours:
        for minute in schedule.minutes:
            local = datetime.combine(day, time(hour, minute))
            if local < floor:
                continue
            if stop is not None and local > stop:
                return best
            for instant in _resolve(local, tz, schedule.hour_star):
                if instant > after and (best is None or instant < best):
                    best = instant
                    # later wall-clock times can only come first across a DST change
                    stop = local + _DST_MARGIN
    return best


def _resolve(local: datetime, tz: tzinfo, hour_star: bool) -> list[datetime]:
    """The UTC instants a local wall-clock fire time stands for (see the module docstring)."""
    if tz is UTC:
        return [local.replace(tzinfo=UTC)]
    first = local.replace(tzinfo=tz, fold=0)
    second = local.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return [first.astimezone(UTC)]
    a, b = first.astimezone(UTC), second.astimezone(UTC)
    exists = a.astimezone(tz).replace(tzinfo=None) == local
    if exists:  # repeated wall-clock time
        return sorted({a, b}) if hour_star else [min(a, b)]
    if hour_star:
        return []
    return [_transition(min(a, b), max(a, b), tz)]


def _transition(low: datetime, high: datetime, tz: tzinfo) -> datetime:
    """The instant in (low, high] at which ``tz`` changes its offset (to the second)."""
    offset = low.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            middle = low + timedelta(seconds=1)
        if middle.astimezone(tz).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high
