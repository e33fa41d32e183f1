"""Retry policies: bounds of the jittered exponential backoff and error classification."""

from __future__ import annotations

import random

import psycopg
import psycopg.errors
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.backoff import (
    DEFAULT_POLICY,
    RetryPolicy,
    is_transient_sql_error,
    is_transient_sqlstate,
)


def test_default_is_three_attempts() -> None:
    assert DEFAULT_POLICY.max_attempts == 3
    assert DEFAULT_POLICY.allows_another(1)
    assert DEFAULT_POLICY.allows_another(2)
    assert not DEFAULT_POLICY.allows_another(3)


def test_base_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay_seconds=1, backoff_factor=3,
                         max_delay_seconds=20)
    assert [policy.base_delay(n) for n in range(1, 6)] == [1, 3, 9, 20, 20]


def test_huge_attempt_counts_do_not_overflow() -> None:
    policy = RetryPolicy(max_attempts=10_000, initial_delay_seconds=1, backoff_factor=10,
                         max_delay_seconds=60)
    assert policy.base_delay(5000) == 60


@given(
    attempts=st.integers(min_value=1, max_value=50),
    initial=st.floats(min_value=0, max_value=100),
    factor=st.floats(min_value=1, max_value=10),
    cap=st.floats(min_value=0, max_value=1000),
    seed=st.integers(),
)
def test_jittered_delay_stays_within_half_and_full_base(attempts: int, initial: float,
                                                        factor: float, cap: float,
                                                        seed: int) -> None:
    policy = RetryPolicy(max_attempts=attempts + 1, initial_delay_seconds=initial,
                         backoff_factor=factor, max_delay_seconds=cap)
    base = policy.base_delay(attempts)
    delay = policy.delay(attempts, random.Random(seed))
    assert base <= cap
    assert base / 2 <= delay <= base


def test_jitter_spreads_delays() -> None:
    rng = random.Random(7)
    delays = {round(DEFAULT_POLICY.delay(2, rng), 6) for _ in range(20)}
    assert len(delays) > 10


def test_policy_from_a_retry_node() -> None:
    policy = RetryPolicy.from_spec({"kind": "retry", "body": "n1", "max_attempts": 5,
                                    "initial_delay_seconds": 0.5, "backoff_factor": 1.5,
                                    "max_delay_seconds": 10})
    assert policy == RetryPolicy(5, 0.5, 1.5, 10)
    assert RetryPolicy.from_spec({"max_attempts": 2}) == RetryPolicy(max_attempts=2)


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"backoff_factor": 0.5},
                                    {"initial_delay_seconds": -1}])
def test_invalid_policies(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_transient_sqlstates() -> None:
    assert is_transient_sqlstate("40001")
    assert is_transient_sqlstate("40P01")
    assert is_transient_sqlstate("08006")
    assert not is_transient_sqlstate("23505")  # unique violation: retrying cannot help
    assert not is_transient_sqlstate("42601")
    assert not is_transient_sqlstate(None)


def test_transient_sql_errors_from_a_real_server(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as unique:
            conn.execute("CREATE TEMP TABLE t (x int PRIMARY KEY); INSERT INTO t VALUES (1), (1)")
        assert not is_transient_sql_error(unique.value)
        with pytest.raises(psycopg.Error) as serialization:
            conn.execute("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'serialization_failure'; "
                         "END $$")
        assert is_transient_sql_error(serialization.value)
        with pytest.raises(psycopg.Error) as deadlock:
            conn.execute("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'deadlock_detected'; "
                         "END $$")
        assert is_transient_sql_error(deadlock.value)
    closed = psycopg.connect(dsn)
    closed.close()
    with pytest.raises(psycopg.OperationalError) as lost:
        closed.execute("SELECT 1")
    assert is_transient_sql_error(lost.value)
    assert not is_transient_sql_error(ValueError("x"))
