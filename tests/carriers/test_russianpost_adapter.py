"""The Russian Post adapter against its emulator: SOAP faults, the daily cap, ticket timing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carriers.base import (
    AdapterSettings,
    CarrierAlarm,
    InvalidNumber,
    NotFound,
    TemporaryFailure,
    Tracked,
)
from carriers.emulators.russianpost import RussianPostEmulator
from carriers.http import RetryPolicy
from carriers.ratelimit import Limiter, QuotaExhausted, Unlimited
from carriers.russianpost import RussianPostAdapter, RussianPostLimiter
from carriers.status import Status

# 12:00 Moscow on 26 May; Moscow midnight is 21:00 UTC.
START = datetime(2026, 5, 26, 9, 0, tzinfo=UTC)

SCENARIO: dict[str, Any] = {
    "parcels": [
        {"number": "RR123456785CN", "destination": "RU", "events": [
            {"at": "2026-05-07T02:00:00Z", "status": "in_transit", "leg": "first_mile",
             "location": "Шэньчжэнь", "utc_offset": "+08:00"},
            {"at": "2026-05-20T10:41:00Z", "status": "customs_hold", "location": "102976 Москва ММПО",
             "utc_offset": "+03:00"},
            {"at": "2026-05-21T10:41:00Z", "status": "in_transit", "raw": {"russianpost": "14.1"}},
            {"at": "2026-05-25T06:10:00Z", "status": "available_for_pickup",
             "location": "190000 Санкт-Петербург", "utc_offset": "+03:00"},
            {"at": "2026-05-27T12:02:00Z", "status": "delivered", "utc_offset": "+03:00"},
        ]},
        {"number": "45008378901234", "destination": "RU", "events": [
            {"at": "2026-05-20T10:00:00Z", "status": "customs_payment_due"}]},
        {"number": "RA644000005RU", "destination": "RU", "invalid": True},
        {"number": "QQ850419295BR", "destination": "BR", "events": [
            {"at": "2026-05-02T02:00:00Z", "status": "in_transit"}]},
    ]
}  # fmt: skip

RETRY = RetryPolicy(attempts=2, initial_delay=0.01, max_delay=0.02, jitter=0)


@pytest.fixture
def emulator() -> Iterator[RussianPostEmulator]:
    with RussianPostEmulator(SCENARIO, now=START) as emu:
        emu.credentials = ("login", "password")
        yield emu


def make_adapter(
    emu: RussianPostEmulator, *, secret: str = "password", limiter: Limiter | None = None, **kw: Any
) -> RussianPostAdapter:
    settings = AdapterSettings(base_url=emu.url, api_key="login", secret=secret, timeout_seconds=5)
    return RussianPostAdapter(
        settings, clock=emu.now, retry=RETRY, limiter=limiter or Unlimited(), **kw
    )


@pytest.fixture
async def adapter(emulator: RussianPostEmulator) -> AsyncIterator[RussianPostAdapter]:
    async with make_adapter(emulator) as a:
        yield a


async def test_history_newest_first_in_utc(adapter: RussianPostAdapter) -> None:
    [result] = await adapter.track(["RR123456785CN"])
    assert isinstance(result, Tracked)
    assert result.status is Status.AVAILABLE_FOR_PICKUP
    assert result.raw_status == "8.2"
    assert [e.raw_code for e in result.events] == ["8.2", "14.1", "11.0", "1.1"]
    assert [e.occurred_at for e in result.events][-1] == datetime(2026, 5, 7, 2, 0, tzinfo=UTC)
    assert result.events[0].location == "190000 Санкт-Петербург"


async def test_delivered_once_handed_over(
    emulator: RussianPostEmulator, adapter: RussianPostAdapter
) -> None:
    emulator.set_clock(datetime(2026, 5, 28, tzinfo=UTC))
    [result] = await adapter.track(["RR123456785CN"])
    assert isinstance(result, Tracked) and result.status is Status.DELIVERED


async def test_domestic_number_with_duties_due(adapter: RussianPostAdapter) -> None:
    [result] = await adapter.track(["45008378901234"])
    assert isinstance(result, Tracked) and result.status is Status.CUSTOMS_PAYMENT_DUE


async def test_unknown_invalid_and_foreign_numbers(
    emulator: RussianPostEmulator, adapter: RussianPostAdapter
) -> None:
    results = {r.number: r for r in await adapter.track(
        ["AA000000005RU", "RA644000005RU", "QQ850419295BR", "not-a-barcode"])}  # fmt: skip
    assert isinstance(results["AA000000005RU"], NotFound)
    assert isinstance(results["RA644000005RU"], InvalidNumber)
    assert isinstance(results["QQ850419295BR"], NotFound)
    assert isinstance(results["not-a-barcode"], InvalidNumber)
    assert emulator.stats.snapshot()["total"] == 3  # the malformed one cost no request


async def test_one_number_per_request(
    emulator: RussianPostEmulator, adapter: RussianPostAdapter
) -> None:
    await adapter.track(["RR123456785CN", "45008378901234"])
    assert emulator.stats.snapshot()["batch_sizes"]["/rtm34"] == [1, 1]


async def test_bad_login_is_an_alarm_not_a_retry(emulator: RussianPostEmulator) -> None:
    async with make_adapter(emulator, secret="wrong") as a:
        with pytest.raises(CarrierAlarm):
            await a.track(["RR123456785CN"])
    assert emulator.stats.snapshot()["total"] == 1  # the HTTP 500 Fault was not retried


async def test_server_errors_are_retried(
    emulator: RussianPostEmulator, adapter: RussianPostAdapter
) -> None:
    emulator.set_faults({"rules": [{"fault": "503", "first": 1}]})
    [result] = await adapter.track(["RR123456785CN"])
    assert isinstance(result, Tracked)


@pytest.mark.parametrize("fault", ["malformed", "content_type"])
async def test_unreadable_answers_are_temporary(
    emulator: RussianPostEmulator, adapter: RussianPostAdapter, fault: str
) -> None:
    emulator.set_faults({"rules": [{"fault": fault}]})
    [result] = await adapter.track(["RR123456785CN"])
    assert isinstance(result, TemporaryFailure)
    assert adapter.breaker.consecutive_failures == 1


# --- the free plan's daily cap ----------------------------------------------------------------


def capped(emu: RussianPostEmulator) -> RussianPostLimiter:
    return RussianPostLimiter(per_second=1000, per_day=100, clock=emu.now)


async def test_daily_cap_stops_at_100_and_waits_for_moscow_midnight(
    emulator: RussianPostEmulator,
) -> None:
    numbers = [f"AA{i:08d}0RU" for i in range(101)]
    async with make_adapter(emulator, limiter=capped(emulator)) as a:
        results = await a.track(numbers)
        assert sum(isinstance(r, NotFound) for r in results) == 100
        last = results[-1]
        assert isinstance(last, TemporaryFailure)
        assert (
            last.retry_after == (datetime(2026, 5, 26, 21, 0, tzinfo=UTC) - START).total_seconds()
        )
        assert emulator.stats.snapshot()["total"] == 100  # the 101st never left the process

        emulator.set_clock(datetime(2026, 5, 26, 21, 0, 1, tzinfo=UTC))  # 00:00:01 Moscow
        [again] = await a.track(["RR123456785CN"])
        assert isinstance(again, Tracked)


async def test_settings_can_only_lower_the_cap(emulator: RussianPostEmulator) -> None:
    settings = AdapterSettings(
        base_url=emulator.url, api_key="login", secret="password", daily_limit=500
    )
    async with RussianPostAdapter(settings, clock=emulator.now) as a:
        assert isinstance(a.limiter, RussianPostLimiter) and a.limiter.per_day == 100
    lower = AdapterSettings(base_url=emulator.url, daily_limit=10)
    async with RussianPostAdapter(lower, clock=emulator.now) as a:
        assert isinstance(a.limiter, RussianPostLimiter) and a.limiter.per_day == 10


def test_the_day_turns_at_moscow_midnight_not_utc_midnight() -> None:
    now = [datetime(2026, 5, 26, 20, 0, tzinfo=UTC)]  # 23:00 Moscow
    limiter = RussianPostLimiter(per_second=1000, per_day=100, clock=lambda: now[0])
    for _ in range(100):
        limiter.take()
    with pytest.raises(QuotaExhausted) as caught:
        limiter.take()
    assert caught.value.retry_after == timedelta(hours=1).total_seconds()
    now[0] = datetime(2026, 5, 26, 21, 0, tzinfo=UTC)  # 00:00 Moscow, still 26 May in UTC
    limiter.take()
    assert limiter.used_today() == 1


async def test_a_limit_fault_from_the_server_alarms_once_then_waits_for_midnight(
    emulator: RussianPostEmulator,
) -> None:
    emulator.set_faults({"rules": [{"fault": "quota", "first": 1}]})
    async with make_adapter(emulator, limiter=capped(emulator)) as a:
        with pytest.raises(CarrierAlarm):
            await a.track(["RR123456785CN"])
        [second] = await a.track(["RR123456785CN"])
    assert isinstance(second, TemporaryFailure)
    assert second.retry_after == pytest.approx(12 * 3600)
    assert emulator.stats.snapshot()["total"] == 1


# --- the batch ticket service -----------------------------------------------------------------


async def test_ticket_then_answer_no_sooner_than_15_minutes(emulator: RussianPostEmulator) -> None:
    numbers = ["RR123456785CN", "45008378901234", "AA000000005RU", "RA644000005RU"]
    async with make_adapter(emulator, mode="batch") as a:
        assert a.batch_size == 3000
        first = await a.track(numbers)
        assert all(isinstance(r, TemporaryFailure) and r.retry_after == 900 for r in first)
        assert a.outstanding_tickets == 1

        emulator.advance(10 * 60)
        early = await a.track(numbers)
        assert all(isinstance(r, TemporaryFailure) and r.retry_after == 300 for r in early)
        assert emulator.stats.snapshot()["by_endpoint"]["/fc"] == 1  # not asked before its time

        emulator.advance(5 * 60)
        results = {r.number: r for r in await a.track(numbers)}
        assert a.outstanding_tickets == 0
    tracked = results["RR123456785CN"]
    assert isinstance(tracked, Tracked) and tracked.status is Status.AVAILABLE_FOR_PICKUP
    assert isinstance(results["45008378901234"], Tracked)
    assert isinstance(results["AA000000005RU"], NotFound)
    assert isinstance(results["RA644000005RU"], InvalidNumber)
    assert emulator.stats.snapshot()["by_endpoint"]["/fc"] == 2
    assert emulator.state()["early_polls"] == 0


async def test_answers_for_numbers_not_asked_now_are_kept_for_later(
    emulator: RussianPostEmulator,
) -> None:
    async with make_adapter(emulator, mode="batch") as a:
        await a.track(["RR123456785CN", "45008378901234"])
        emulator.advance(15 * 60)
        [one] = await a.track(["RR123456785CN"])
        [other] = await a.track(["45008378901234"])
    assert isinstance(one, Tracked) and isinstance(other, Tracked)
    assert emulator.stats.snapshot()["by_endpoint"]["/fc"] == 2  # one ticket, one answer


async def test_not_ready_answer_waits_another_15_minutes(emulator: RussianPostEmulator) -> None:
    emulator.answer_delay = timedelta(minutes=20)  # the service took longer than usual
    async with make_adapter(emulator, mode="batch") as a:
        await a.track(["RR123456785CN"])
        emulator.advance(15 * 60)
        [waiting] = await a.track(["RR123456785CN"])
        assert isinstance(waiting, TemporaryFailure) and waiting.retry_after == 900
        emulator.advance(14 * 60)
        await a.track(["RR123456785CN"])  # too soon: answered locally
        emulator.advance(60)
        [done] = await a.track(["RR123456785CN"])
    assert isinstance(done, Tracked)
    assert emulator.stats.snapshot()["by_endpoint"]["/fc"] == 3
    assert emulator.state()["early_polls"] == 0


async def test_an_expired_ticket_is_replaced(emulator: RussianPostEmulator) -> None:
    async with make_adapter(emulator, mode="batch") as a:
        await a.track(["RR123456785CN"])
        emulator.advance(timedelta(hours=33).total_seconds())
        [result] = await a.track(["RR123456785CN"])
        assert isinstance(result, TemporaryFailure) and result.retry_after == 900
        assert len(emulator.state()["tickets"]) == 2
        emulator.advance(15 * 60)
        [result] = await a.track(["RR123456785CN"])
    assert isinstance(result, Tracked) and result.status is Status.DELIVERED


async def test_batch_auth_error_is_an_alarm(emulator: RussianPostEmulator) -> None:
    async with make_adapter(emulator, mode="batch", secret="wrong") as a:
        with pytest.raises(CarrierAlarm):
            await a.track(["RR123456785CN"])
