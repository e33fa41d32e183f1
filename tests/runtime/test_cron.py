"""Cron fire times: Vixie semantics, names, Sunday 0/7, time zones and daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.cron import CronError, next_fire, parse

MONDAY = datetime(2024, 1, 1, tzinfo=UTC)  # 2024-01-01 was a Monday


def fires(expr: str, after: datetime = MONDAY, count: int = 5, zone: str | None = None) -> list[str]:
    out = []
    when = after
    for _ in range(count):
        when = next_fire(expr, when, zone)
        out.append(when.strftime("%a %Y-%m-%d %H:%M"))
    return out


def test_every_minute_is_strictly_after() -> None:
    assert next_fire("* * * * *", MONDAY) == MONDAY + timedelta(minutes=1)
    assert next_fire("* * * * *", MONDAY + timedelta(seconds=30)) == MONDAY + timedelta(minutes=1)


def test_weekdays_are_monday_to_friday() -> None:
    assert fires("0 9 * * 1-5", count=6) == [
        "Mon 2024-01-01 09:00", "Tue 2024-01-02 09:00", "Wed 2024-01-03 09:00",
        "Thu 2024-01-04 09:00", "Fri 2024-01-05 09:00", "Mon 2024-01-08 09:00",
    ]


@pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN", "Sun"])
def test_sunday_is_0_or_7_or_its_name(sunday: str) -> None:
    assert fires(f"0 0 * * {sunday}", count=2) == ["Sun 2024-01-07 00:00", "Sun 2024-01-14 00:00"]


def test_range_ending_in_7_includes_sunday() -> None:
    assert fires("0 0 * * 5-7", count=4) == [
        "Fri 2024-01-05 00:00", "Sat 2024-01-06 00:00", "Sun 2024-01-07 00:00",
        "Fri 2024-01-12 00:00",
    ]


def test_month_and_day_names() -> None:
    assert fires("30 6 * mar-apr mon,FRI", count=3) == [
        "Fri 2024-03-01 06:30", "Mon 2024-03-04 06:30", "Fri 2024-03-08 06:30",
    ]


def test_lists_ranges_and_steps() -> None:
    assert fires("5,10-12,*/30 0 * * *", count=6) == [
        "Mon 2024-01-01 00:05", "Mon 2024-01-01 00:10", "Mon 2024-01-01 00:11",
        "Mon 2024-01-01 00:12", "Mon 2024-01-01 00:30", "Tue 2024-01-02 00:00",
    ]
    assert fires("0 8-18/5 * * *", count=4) == [
        "Mon 2024-01-01 08:00", "Mon 2024-01-01 13:00", "Mon 2024-01-01 18:00",
        "Tue 2024-01-02 08:00",
    ]


def test_both_day_fields_restricted_means_either() -> None:
    # the 15th of the month OR any Friday
    assert fires("0 0 15 * 5", count=4) == [
        "Fri 2024-01-05 00:00", "Fri 2024-01-12 00:00", "Mon 2024-01-15 00:00",
        "Fri 2024-01-19 00:00",
    ]


def test_a_starred_day_field_means_only_the_other_counts() -> None:
    assert fires("0 0 13 * *", count=2) == ["Sat 2024-01-13 00:00", "Tue 2024-02-13 00:00"]
    assert fires("0 0 * * 2", count=2) == ["Tue 2024-01-02 00:00", "Tue 2024-01-09 00:00"]


def test_star_step_in_day_of_month_counts_as_unrestricted() -> None:
    # crontab(5): a field starting with '*' is not "restricted", so both must match:
    # Fridays that fall on the 1st, 11th, 21st or 31st (croniter would OR them instead)
    assert fires("0 0 */10 * 5", count=2) == ["Fri 2024-03-01 00:00", "Fri 2024-05-31 00:00"]
    assert croniter("0 0 */10 * 5", MONDAY).get_next(datetime).day == 5  # differs


def test_leap_day() -> None:
    assert fires("0 12 29 2 *", count=2) == ["Thu 2024-02-29 12:00", "Tue 2028-02-29 12:00"]


def test_missed_ticks_fire_once() -> None:
    # a worker back after three days asks for the next fire after *now*: one fire, not 72
    back = MONDAY + timedelta(days=3, minutes=7)
    assert next_fire("0 * * * *", back) == MONDAY + timedelta(days=3, hours=1)


def test_time_zone() -> None:
    paris = next_fire("0 9 * * *", MONDAY, "Europe/Paris")
    assert paris == datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    summer = next_fire("0 9 * * *", datetime(2024, 7, 1, tzinfo=UTC), "Europe/Paris")
    assert summer == datetime(2024, 7, 1, 7, 0, tzinfo=UTC)
    assert next_fire("0 9 * * *", MONDAY, "UTC") == datetime(2024, 1, 1, 9, tzinfo=UTC)


def test_spring_forward_fixed_time_fires_when_clocks_jump() -> None:
    # Europe/Paris, 2024-03-31: 02:00 CET jumps to 03:00 CEST (01:00 UTC)
    day_before = datetime(2024, 3, 30, 12, tzinfo=UTC)
    assert next_fire("30 2 * * *", day_before, "Europe/Paris") == datetime(
        2024, 3, 31, 1, 0, tzinfo=UTC)
    # and once only: the next is the following day's 02:30 CEST
    after_jump = datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
    assert next_fire("30 2 * * *", after_jump, "Europe/Paris") == datetime(
        2024, 4, 1, 0, 30, tzinfo=UTC)
    # every quarter of the 02 hour collapses into one fire at the jump
    assert next_fire("*/15 2 * * *", after_jump, "Europe/Paris") == datetime(
        2024, 4, 1, 0, 0, tzinfo=UTC)


def test_spring_forward_hourly_job_skips_the_missing_hour() -> None:
    start = datetime(2024, 3, 31, 0, 40, tzinfo=UTC)  # 01:40 CET
    assert fires("*/30 * * * *", start, 2, "Europe/Paris") == [
        "Sun 2024-03-31 01:00", "Sun 2024-03-31 01:30",  # 03:00 and 03:30 CEST
    ]


def test_fall_back_fixed_time_fires_once() -> None:
    # Europe/Paris, 2024-10-27: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice
    start = datetime(2024, 10, 26, 12, tzinfo=UTC)
    assert fires("30 2 * * *", start, 2, "Europe/Paris") == [
        "Sun 2024-10-27 00:30", "Mon 2024-10-28 01:30",
    ]


def test_fall_back_wildcard_hour_follows_real_time() -> None:
    start = datetime(2024, 10, 26, 23, 50, tzinfo=UTC)  # 01:50 CEST
    local = [
        when.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M%z")
        for when in _series("*/30 * * * *", start, 5, "Europe/Paris")
    ]
    assert local == ["02:00+0200", "02:30+0200", "02:00+0100", "02:30+0100", "03:00+0100"]


def _series(expr: str, after: datetime, count: int, zone: str) -> list[datetime]:
    out = []
    for _ in range(count):
        after = next_fire(expr, after, zone)
        out.append(after)
    return out


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("* * * *", "4 fields"),
        ("* * * * * *", "6 fields"),
        ("60 * * * *", "minute"),
        ("* * * * 8", "day of week"),
        ("@daily", "0 0 * * *"),
        ("* * 31 2 *", "never fires"),
    ],
)
def test_bad_expressions(expr: str, fragment: str) -> None:
    with pytest.raises(CronError) as info:
        next_fire(expr, MONDAY)
    assert fragment in str(info.value)


def test_unknown_zone_and_naive_time() -> None:
    with pytest.raises(CronError, match="unknown time zone"):
        next_fire("* * * * *", MONDAY, "Mars/Olympus")
    with pytest.raises(ValueError):
        next_fire("* * * * *", datetime(2024, 1, 1))


def test_parse_is_shared_with_the_checker() -> None:
    schedule = parse("0 9 * * MON-FRI")
    assert schedule.weekdays == frozenset({1, 2, 3, 4, 5})
    assert not schedule.day_or


# Where the semantics agree (no day field starting with '*' alongside a restricted one),
# croniter is an independent oracle.
_minute = st.sampled_from(["*", "0", "*/7", "5,35", "10-20/5"])
_hour = st.sampled_from(["*", "0", "9-17", "*/6", "3,15"])
_dom = st.sampled_from(["*", "1", "15", "1-7", "28-31"])
_month = st.sampled_from(["*", "1", "2", "jun-aug", "*/3"])
_dow = st.sampled_from(["*", "0", "1-5", "6", "mon,wed", "7"])


@settings(max_examples=150, deadline=None)
@given(_minute, _hour, _dom, _month, _dow,
       st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)))
def test_agrees_with_croniter_in_utc(minute: str, hour: str, dom: str, month: str, dow: str,
                                     start: datetime) -> None:
    expr = f"{minute} {hour} {dom} {month} {dow}"
    after = start.replace(tzinfo=UTC)
    expected = croniter(expr, after).get_next(datetime)
    assert next_fire(expr, after) == expected
