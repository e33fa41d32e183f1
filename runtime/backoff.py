"""Retry policies: how often a failing step is tried again, and how long to wait in between.

Two sources of policy (DSL.md §5):

* the default, applied to every step: transient SQL errors (serialization failure, deadlock,
  lost connection) and HTTP failures (5xx, timeouts, connection errors) get
  :data:`DEFAULT_POLICY` — 3 attempts in all — and any other error fails the step at once;
* a ``retry`` plan node (``df.retry(e, max_attempts, initial_delay_seconds, backoff_factor,
  max_delay_seconds)``) retries its body on *any* failure with its own numbers.

Delays grow exponentially and carry "equal jitter": the n-th delay is drawn uniformly from
``[base/2, base]`` with ``base = min(max_delay, initial * factor**(n-1))``, so many instances that
failed together do not all come back at the same moment, while the delay never exceeds the
configured bound and never drops below half of it. A delay is drawn once and stored as the task's
due time (see :mod:`runtime.clock`), so the randomness never affects replay.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

# SQLSTATEs worth another attempt: the same statement may well succeed when run again.
TRANSIENT_SQLSTATES = frozenset({
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "08000", "08001", "08003", "08004", "08006", "08007",  # connection_exception family
    "57P01",  # admin_shutdown (the server restarts)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now
})  # fmt: skip


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts in all (the first included) and the delays between them."""

    max_attempts: int = 3
    initial_delay_seconds: float = 1.0
    backoff_factor: float = 2.0
    max_delay_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay_seconds < 0 or self.max_delay_seconds < 0:
            raise ValueError("retry delays cannot be negative")
        if self.backoff_factor < 1:
            raise ValueError("backoff_factor must be at least 1")

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> RetryPolicy:
        """The policy of a ``retry`` plan node (missing fields take the catalogue defaults)."""
        defaults = cls()
        return cls(
            max_attempts=int(spec.get("max_attempts", defaults.max_attempts)),
            initial_delay_seconds=float(
                spec.get("initial_delay_seconds", defaults.initial_delay_seconds)
            ),
            backoff_factor=float(spec.get("backoff_factor", defaults.backoff_factor)),
            max_delay_seconds=float(spec.get("max_delay_seconds", defaults.max_delay_seconds)),
        )

    def allows_another(self, attempts_made: int) -> bool:
        """Whether a step that failed ``attempts_made`` times may be tried again."""
        return attempts_made < self.max_attempts

    def base_delay(self, attempts_made: int) -> float:
        """The un-jittered delay after the ``attempts_made``-th failure (1-based)."""
        exponent = max(attempts_made - 1, 0)
        # cap before multiplying out: factor**exponent overflows floats for long retry chains
        delay = self.initial_delay_seconds
        for _ in range(exponent):
            delay *= self.backoff_factor
            if delay >= self.max_delay_seconds:
                return self.max_delay_seconds
        return min(delay, self.max_delay_seconds)

    def delay(self, attempts_made: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempts_made``-th failure, with jitter."""
        base = self.base_delay(attempts_made)
        draw = (rng or _RANDOM).random()
        return base / 2 + draw * base / 2


# The default for every step: transient errors only, delays of about 0.5 s then 1 s.
DEFAULT_POLICY = RetryPolicy(max_attempts=3, initial_delay_seconds=1.0, backoff_factor=2.0,
                             max_delay_seconds=30.0)

_RANDOM = random.Random()


def is_transient_sqlstate(sqlstate: str | None) -> bool:
    return sqlstate is not None and sqlstate in TRANSIENT_SQLSTATES


def is_transient_sql_error(exc: BaseException) -> bool:
    """Whether a database error is worth another attempt (see :data:`TRANSIENT_SQLSTATES`).

    An :class:`psycopg.OperationalError` without a SQLSTATE is a lost connection.
    """
    if not isinstance(exc, psycopg.Error):
        return False
    if is_transient_sqlstate(exc.sqlstate):
        return True
    return exc.sqlstate is None and isinstance(exc, psycopg.OperationalError)
