"""Injectable time: the one place the runtime asks what time it is.

Everything that decides *when* something is due — timers, cron fire times, signal and step
timeouts, retry delays — reads :meth:`Clock.now`, and due times are computed in Python from it and
stored as absolute timestamps. The database's own ``now()`` never decides whether a task is due:
the worker passes its clock's time into the claim query. That is what makes a test clock work
end to end: advancing it makes timers due at once, in the same process, without sleeping.

A worker waiting for the next due time asks the clock how long to block
(:meth:`Clock.real_wait`): the real clock answers with the real number of seconds, the test clock
answers "until someone advances me" (the caller still bounds the wait), and the test clock calls
the worker's wake-up callback whenever it moves (:meth:`Clock.subscribe`).

Durations that are physical facts — an HTTP request's ``duration_ms``, a socket timeout — use
``time.monotonic`` directly: they measure real work, not schedule time.

The test clock lives in one process. Tests run the worker in background threads of the test
process (see ``tests/runtime/helpers.py``), so one :class:`TestClock` object is shared by the test
and the worker; a worker in another process always uses the real clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the runtime needs to know about time."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def real_wait(self, seconds: float) -> float | None:
        """How long (real seconds) to block waiting for something due in ``seconds`` of clock
        time; ``None`` means "until woken" (the caller applies its own upper bound)."""
        ...

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` whenever the clock jumps; returns a function that unsubscribes."""
        ...


def _unsubscribed() -> None:
    return None


class RealClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_wait(self, seconds: float) -> float | None:
        return max(0.0, seconds)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        return _unsubscribed  # real time never jumps


class TestClock:
    """A clock that stands still until a test moves it (thread-safe).

    ``advance`` and ``set`` wake every subscriber, so a worker blocked until the next timer
    re-reads the time at once.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, start: datetime | None = None) -> None:
        initial = start if start is not None else datetime(2030, 1, 1, tzinfo=UTC)
        if initial.tzinfo is None:
            raise ValueError("TestClock needs a timezone-aware start time")
        self._now = initial.astimezone(UTC)
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[], None]] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def real_wait(self, seconds: float) -> float | None:
        return 0.0 if seconds <= 0 else None

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def advance(self, seconds: float = 0.0, **units: float) -> datetime:
        """Move forward by ``seconds`` (plus ``timedelta`` keyword units); returns the new time."""
        delta = timedelta(seconds=seconds, **units)
        if delta < timedelta(0):
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._now += delta
            now = self._now
        self._notify()
        return now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (aware; not earlier than now)."""
        if when.tzinfo is None:
            raise ValueError("TestClock.set needs a timezone-aware time")
        with self._lock:
            if when < self._now:
                raise ValueError("a clock only moves forward")
            self._now = when.astimezone(UTC)
        self._notify()

    def _notify(self) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback()


def seconds_until(clock: Clock, when: datetime) -> float:
    """Clock seconds from now until ``when`` (negative when it is past)."""
    return (when - clock.now()).total_seconds()


def after(clock: Clock, seconds: float) -> datetime:
    """The clock time ``seconds`` from now."""
    return clock.now() + timedelta(seconds=seconds)


def monotonic_ms_since(start: float) -> int:
    """Whole milliseconds of real time since ``start`` (a ``time.monotonic()`` reading)."""
    return int((time.monotonic() - start) * 1000)


DEFAULT_CLOCK: Clock = RealClock()
