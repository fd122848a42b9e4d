"""The per-carrier limiter never lets more than the declared rate through in any one-second window."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from carriers.emulators.server import peak_in_window
from carriers.ratelimit import (
    CarrierLimiter,
    DailyQuota,
    Limiter,
    QuotaExhausted,
    SlidingWindowLimiter,
    Unlimited,
)


async def test_sliding_window_caps_every_one_second_window() -> None:
    limiter = CarrierLimiter(5)
    starts: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        starts.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(8)))
    assert peak_in_window(starts) <= 5
    assert max(starts) - min(starts) < 2.0  # and it does not crawl


async def test_rates_below_one_per_second_space_requests_out() -> None:
    clock = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    slow = SlidingWindowLimiter(0.5, margin=0.0, monotonic=lambda: clock[0], sleep=fake_sleep)
    await slow.acquire()
    await slow.acquire()
    assert slept == [pytest.approx(2.0)]


def test_daily_quota_refuses_past_the_limit_and_resets_at_utc_midnight() -> None:
    now = [datetime(2026, 5, 1, 23, 0, tzinfo=UTC)]
    quota = DailyQuota(2, clock=lambda: now[0])
    quota.take()
    quota.take()
    with pytest.raises(QuotaExhausted) as caught:
        quota.take()
    assert caught.value.retry_after == pytest.approx(3600)
    now[0] += timedelta(hours=1)
    quota.take()
    assert quota.used == 1


def test_limiters_satisfy_the_protocol() -> None:
    assert isinstance(CarrierLimiter(1), Limiter)
    assert isinstance(Unlimited(), Limiter)
