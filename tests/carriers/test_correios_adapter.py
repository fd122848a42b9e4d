"""The Correios adapter against its loopback emulator: tokens, batching, errors, customs."""

from __future__ import annotations

import asyncio
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
from carriers.correios import CorreiosAdapter
from carriers.emulators.correios import CorreiosEmulator
from carriers.http import RetryPolicy
from carriers.ratelimit import Unlimited
from carriers.status import Status

START = datetime(2026, 5, 26, 12, 0, tzinfo=UTC)
CARD = "0067599079"

SCENARIO: dict[str, Any] = {
    "parcels": [
        {"number": "QQ850419295BR", "destination": "BR", "events": [
            {"at": "2026-05-01T02:00:00Z", "status": "in_transit", "leg": "first_mile",
             "location": "SHENZHEN"},
            {"at": "2026-05-10T10:00:00Z", "status": "customs_hold", "location": "CURITIBA/PR"},
            {"at": "2026-05-12T10:00:00Z", "status": "customs_payment_due"},
            {"at": "2026-05-25T10:00:00Z", "status": "delivered", "location": "NITEROI/RJ"},
        ]},
        {"number": "LB528961554HK", "destination": "BR", "events": [
            {"at": "2026-05-02T02:00:00Z", "status": "in_transit"},
            {"at": "2026-05-11T10:00:00Z", "status": "in_transit", "raw": {"correios": "PAR/10"}},
            {"at": "2026-05-11T09:00:00Z", "status": "customs_hold", "raw": {"correios": "FC/26"}},
        ]},
        {"number": "RA644000005RU", "destination": "RU", "events": [
            {"at": "2026-05-02T02:00:00Z", "status": "in_transit"}]},
        {"number": "PJ907948743BR", "invalid": True},
    ]
}  # fmt: skip


@pytest.fixture
def emulator() -> Iterator[CorreiosEmulator]:
    with CorreiosEmulator(SCENARIO, now=START) as emu:
        emu.credentials = ("user", "code")
        yield emu


def make_adapter(emu: CorreiosEmulator, *, card: str = CARD, **kwargs: Any) -> CorreiosAdapter:
    settings = AdapterSettings(base_url=emu.url, api_key="user", secret="code", timeout_seconds=5)
    kwargs.setdefault("limiter", Unlimited())
    return CorreiosAdapter(
        settings,
        postage_card=card,
        clock=emu.now,
        retry=RetryPolicy(attempts=2, initial_delay=0.01, max_delay=0.02, jitter=0),
        **kwargs,
    )


@pytest.fixture
async def adapter(emulator: CorreiosEmulator) -> AsyncIterator[CorreiosAdapter]:
    async with make_adapter(emulator) as a:
        yield a


async def test_delivered_parcel_with_customs_history(adapter: CorreiosAdapter) -> None:
    [result] = await adapter.track(["QQ850419295BR"])
    assert isinstance(result, Tracked)
    assert result.status is Status.DELIVERED
    assert result.raw_status == "BDE-01"
    assert [e.status for e in result.events] == [
        Status.DELIVERED,
        Status.CUSTOMS_PAYMENT_DUE,
        Status.CUSTOMS_HOLD,
        Status.IN_TRANSIT,
    ]
    assert result.events[0].occurred_at == datetime(2026, 5, 25, 10, 0, tzinfo=UTC)
    assert result.events[0].location == "NITEROI/RJ"
    assert result.events[-1].location == "SHENZHEN"


async def test_aguardando_pagamento_before_delivery(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    emulator.set_clock(datetime(2026, 5, 13, tzinfo=UTC))
    [result] = await adapter.track(["QQ850419295BR"])
    assert isinstance(result, Tracked)
    assert result.status is Status.CUSTOMS_PAYMENT_DUE
    assert result.raw_status == "PAR-17"


async def test_customs_finished_with_taxes_open_is_payment_due(adapter: CorreiosAdapter) -> None:
    [result] = await adapter.track(["LB528961554HK"])
    assert isinstance(result, Tracked)
    assert result.status is Status.CUSTOMS_PAYMENT_DUE
    assert result.raw_status == "PAR-10"


async def test_one_list_request_for_many_numbers(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    numbers = ["QQ850419295BR", "LB528961554HK", "RA644000005RU", "PJ907948743BR", "AA000000005BR"]
    results = {r.number: r for r in await adapter.track(numbers)}
    assert isinstance(results["QQ850419295BR"], Tracked)
    assert isinstance(results["LB528961554HK"], Tracked)
    assert isinstance(results["RA644000005RU"], NotFound)  # Russia's parcel: unknown to Correios
    assert isinstance(results["PJ907948743BR"], InvalidNumber)
    assert isinstance(results["AA000000005BR"], NotFound)
    stats = emulator.stats.snapshot()
    assert stats["by_endpoint"]["/srorastro/v1/objetos"] == 1
    assert stats["max_batch"] == {"/srorastro/v1/objetos": 5}


async def test_batches_never_exceed_fifty(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    numbers = [f"AA{i:08d}{0}BR" for i in range(120)]
    results = await adapter.track(numbers)
    assert len(results) == 120 and all(isinstance(r, NotFound) for r in results)
    assert emulator.stats.snapshot()["batch_sizes"]["/srorastro/v1/objetos"] == [50, 50, 20]


async def test_malformed_numbers_cost_no_request(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    results = await adapter.track(["LP00612345678901", "12345"])
    assert all(isinstance(r, InvalidNumber) for r in results)
    assert emulator.stats.snapshot()["total"] == 0


async def test_token_is_fetched_once_and_reused(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    for _ in range(3):
        await adapter.track(["QQ850419295BR"])
    assert emulator.state()["tokens_issued"] == 1
    assert emulator.state()["postage_cards"] == [CARD]


async def test_token_is_refreshed_before_it_expires(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    await adapter.track(["QQ850419295BR"])
    emulator.advance((timedelta(hours=24) - timedelta(minutes=3)).total_seconds())
    [result] = await adapter.track(["QQ850419295BR"])
    assert isinstance(result, Tracked)
    assert emulator.state()["tokens_issued"] == 2
    assert emulator.state()["refused"] == 0  # renewed before Correios had to refuse it


async def test_token_is_still_used_well_before_expiry(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    await adapter.track(["QQ850419295BR"])
    emulator.advance(timedelta(hours=23).total_seconds())
    await adapter.track(["QQ850419295BR"])
    assert emulator.state()["tokens_issued"] == 1


async def test_a_revoked_token_is_replaced_once_on_401(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    await adapter.track(["QQ850419295BR"])
    emulator.revoke_tokens()
    [result] = await adapter.track(["QQ850419295BR"])
    assert isinstance(result, Tracked)
    assert emulator.state() | {"postage_cards": None} == {
        "tokens_issued": 2, "live_tokens": 1, "postage_cards": None, "refused": 1
    }  # fmt: skip


async def test_refusal_with_a_fresh_token_is_an_alarm(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    emulator.set_faults(
        {"rules": [{"fault": "auth", "endpoint": "/srorastro/v1/objetos/QQ850419295BR"}]}
    )
    with pytest.raises(CarrierAlarm):
        await adapter.track(["QQ850419295BR"])
    assert emulator.state()["tokens_issued"] == 2  # one refresh, then a person must look


async def test_bad_credentials_are_an_alarm(emulator: CorreiosEmulator) -> None:
    settings = AdapterSettings(base_url=emulator.url, api_key="user", secret="wrong")
    async with CorreiosAdapter(
        settings, postage_card=CARD, clock=emulator.now, limiter=Unlimited()
    ) as a:
        with pytest.raises(CarrierAlarm) as caught:
            await a.track(["QQ850419295BR"])
    assert "token" in caught.value.reason


async def test_without_a_postage_card_the_basic_only_token_variant_is_used(
    emulator: CorreiosEmulator,
) -> None:
    async with make_adapter(emulator, card="") as a:
        [result] = await a.track(["QQ850419295BR"])
    assert isinstance(result, Tracked)
    assert emulator.stats.snapshot()["by_endpoint"]["/token/v1/autentica"] == 1


async def test_concurrent_calls_share_one_token_request(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    await asyncio.gather(*(adapter.track(["QQ850419295BR"]) for _ in range(5)))
    assert emulator.state()["tokens_issued"] == 1


async def test_unknown_fault_gives_not_found(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    emulator.set_faults(
        {"rules": [{"fault": "unknown", "endpoint": "/srorastro/v1/objetos/QQ850419295BR"}]}
    )
    [result] = await adapter.track(["QQ850419295BR"])
    assert isinstance(result, NotFound)


async def test_a_spent_quota_is_an_alarm_without_a_token_refresh(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    emulator.set_faults(
        {"rules": [{"fault": "quota", "endpoint": "/srorastro/v1/objetos/QQ850419295BR"}]}
    )
    with pytest.raises(CarrierAlarm) as caught:
        await adapter.track(["QQ850419295BR"])
    assert "quota" in caught.value.reason
    assert emulator.state()["tokens_issued"] == 1


@pytest.mark.parametrize("fault", ["500", "503", "malformed", "content_type", "reset"])
async def test_transient_faults_are_retried(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter, fault: str
) -> None:
    emulator.set_faults(
        {"rules": [{"fault": fault, "endpoint": "/srorastro/v1/objetos/QQ850419295BR", "first": 1}]}
    )
    [result] = await adapter.track(["QQ850419295BR"])
    if fault in ("malformed", "content_type"):
        # A 200 with an unreadable body is not retried by the HTTP layer: reported, tried next poll.
        assert isinstance(result, TemporaryFailure)
        [result] = await adapter.track(["QQ850419295BR"])
    assert isinstance(result, Tracked)


async def test_a_bad_code_in_a_list_request_does_not_spoil_the_others(
    emulator: CorreiosEmulator, adapter: CorreiosAdapter
) -> None:
    emulator.set_faults({"rules": [{"fault": "500", "endpoint": "/never"}]})
    emulator.max_batch = (
        1  # every list request is now "too many": the adapter falls back to singles
    )
    results = await adapter.track(["QQ850419295BR", "LB528961554HK"])
    assert all(isinstance(r, Tracked) for r in results)


async def test_the_declared_rate_is_kept(emulator: CorreiosEmulator) -> None:
    async with make_adapter(emulator, limiter=None) as a:
        for number in ["QQ850419295BR", "LB528961554HK", "AA000000005BR", "PJ907948743BR"]:
            await a.track([number])
    assert emulator.stats.snapshot()["peak_per_second"] <= 2
