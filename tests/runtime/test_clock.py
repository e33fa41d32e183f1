"""The injectable clock: real time, and a test clock that moves only when told to."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from runtime.clock import RealClock, TestClock, after, seconds_until


def test_real_clock_is_aware_utc() -> None:
    now = RealClock().now()
    assert now.tzinfo is UTC
    assert RealClock().real_wait(2.5) == 2.5
    assert RealClock().real_wait(-1) == 0.0


def test_test_clock_stands_still_until_advanced() -> None:
    clock = TestClock(datetime(2030, 5, 1, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2030, 5, 1, tzinfo=UTC)
    clock.advance(90)
    assert clock.now() == datetime(2030, 5, 1, 0, 1, 30, tzinfo=UTC)
    clock.advance(days=2, hours=1)
    assert clock.now() == datetime(2030, 5, 3, 1, 1, 30, tzinfo=UTC)
    clock.set(datetime(2031, 1, 1, tzinfo=UTC))
    assert clock.now().year == 2031


def test_test_clock_refuses_to_go_back_and_naive_times() -> None:
    clock = TestClock()
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(clock.now() - timedelta(seconds=1))
    with pytest.raises(ValueError):
        TestClock(datetime(2030, 1, 1))


def test_test_clock_waits_are_until_woken() -> None:
    clock = TestClock()
    assert clock.real_wait(3600) is None
    assert clock.real_wait(0) == 0.0


def test_subscribers_are_woken_by_jumps() -> None:
    clock = TestClock()
    woken = threading.Event()
    unsubscribe = clock.subscribe(woken.set)
    waiter = threading.Thread(target=woken.wait, args=(30,))
    waiter.start()
    clock.advance(3600)
    waiter.join(30)
    assert woken.is_set()
    woken.clear()
    unsubscribe()
    clock.advance(1)
    assert not woken.is_set()


def test_helpers() -> None:
    clock = TestClock(datetime(2030, 1, 1, tzinfo=UTC))
    due = after(clock, 120)
    assert seconds_until(clock, due) == 120
    clock.advance(150)
    assert seconds_until(clock, due) == -30
