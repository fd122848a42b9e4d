"""Retries: transient failures are retried with backoff, Retry-After is honoured, attempts are bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from carriers.base import AdapterSettings
from carriers.http import (
    RetriesExhausted,
    RetryPolicy,
    make_client,
    parse_retry_after,
    send_with_retry,
)
from carriers.ratelimit import Unlimited
from tests.carriers.echo_emulator import EchoEmulator

FAST = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05, jitter=0.01, max_retry_after=5)


@pytest.fixture
async def emu() -> AsyncIterator[EchoEmulator]:
    async with EchoEmulator() as emulator:
        yield emulator


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def get(emu: EchoEmulator, sleep: Sleeps, policy: RetryPolicy = FAST) -> httpx.Response:
    settings = AdapterSettings(base_url=emu.url, timeout_seconds=0.3)
    async with make_client(settings) as client:
        return await send_with_retry(
            client, "GET", "x", policy=policy, limiter=Unlimited(), sleep=sleep
        )


@pytest.mark.parametrize("fault", ["500", "503", "429", "reset", "timeout", "truncated"])
async def test_transient_faults_are_retried_until_success(emu: EchoEmulator, fault: str) -> None:
    emu.set_faults({"rules": [{"fault": fault, "first": 2, "delay": 1}]})
    sleep = Sleeps()
    response = await get(emu, sleep)
    assert response.json()["ok"] is True
    assert len(sleep.calls) == 2
    assert emu.stats.snapshot()["total"] == 3


async def test_attempts_are_bounded(emu: EchoEmulator) -> None:
    emu.set_faults({"rules": [{"fault": "503"}]})
    with pytest.raises(RetriesExhausted, match="503"):
        await get(emu, Sleeps())
    assert emu.stats.snapshot()["total"] == 3


async def test_retry_after_is_honoured(emu: EchoEmulator) -> None:
    emu.set_faults({"rules": [{"fault": "429", "first": 1, "retry_after": 2}]})
    sleep = Sleeps()
    await get(emu, sleep)
    assert sleep.calls == [pytest.approx(2, abs=0.05)]


async def test_a_retry_after_beyond_the_budget_gives_up_at_once(emu: EchoEmulator) -> None:
    emu.set_faults({"rules": [{"fault": "429", "retry_after": 600}]})
    with pytest.raises(RetriesExhausted) as caught:
        await get(emu, Sleeps())
    assert caught.value.retry_after == 600
    assert emu.stats.snapshot()["total"] == 1


async def test_client_errors_are_returned_not_retried(emu: EchoEmulator) -> None:
    emu.set_faults({"rules": [{"fault": "auth"}]})
    assert (await get(emu, Sleeps())).status_code == 401
    assert emu.stats.snapshot()["total"] == 1


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3
    assert parse_retry_after("Fri, 01 May 2026 12:00:30 GMT", now=now) == 30
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
