"""The circuit breaker opens after N consecutive failures, fails fast, and lets one trial through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carriers.breaker import BreakerState, CircuitBreaker


def make() -> tuple[CircuitBreaker, list[datetime]]:
    now = [datetime(2026, 5, 1, tzinfo=UTC)]
    return CircuitBreaker(failure_threshold=3, cooldown=60, clock=lambda: now[0]), now


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker, _ = make()
    for _ in range(2):
        breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after() == 60


def test_success_resets_the_count() -> None:
    breaker, _ = make()
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_half_open_lets_one_trial_through_and_closes_on_success() -> None:
    breaker, now = make()
    for _ in range(3):
        breaker.record_failure()
    now[0] += timedelta(seconds=61)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # only one trial at a time
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_failed_trial_reopens_for_a_full_cooldown() -> None:
    breaker, now = make()
    for _ in range(3):
        breaker.record_failure()
    now[0] += timedelta(seconds=61)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == 60


def test_a_trial_that_ends_in_neither_success_nor_failure_frees_the_slot() -> None:
    breaker, now = make()
    for _ in range(3):
        breaker.record_failure()
    now[0] += timedelta(seconds=61)
    assert breaker.allow()
    breaker.cancel_trial()  # e.g. the trial raised CarrierAlarm
    assert breaker.allow()
