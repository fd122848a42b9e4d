"""The contract every carrier adapter passes, through its own emulator over real loopback HTTP.

How to add an adapter to the contract
-------------------------------------
Create `tests/carriers/test_contract_<name>.py` with one class::

    from carriers.emulators.<name> import <Name>Emulator
    from carriers.<name>_codes import STATUS_TABLE          # raw code -> Status, the adapter's table
    from tests.carriers.contract import AdapterContract, s10

    class Test<Name>Contract(AdapterContract):
        adapter_name = "<name>"                  # as registered in carriers.registry.ADAPTERS
        emulator_class = <Name>Emulator
        mapped_codes = STATUS_TABLE              # {raw code as the emulator reads it from a
                                                 #  scenario event's raw[<name>]: expected Status}
        invalid_number = "..."                   # a number the carrier rejects as malformed

        def number(self, i: int) -> str:        # the i-th distinct valid number for this carrier
            return s10(i, "BR")

Optional hooks: `destination` (country of the scenario parcels, default "BR"), `raw_code(code)`
(what `TrackEvent.raw_code` holds for a scenario code, default the code itself),
`prepare(emulator, numbers)` (make numbers known without requests, e.g. register them),
`settings(emulator, **overrides)`, `emulator_options()` (extra constructor keywords; the emulator
is built as `emulator_class(now=NOW, **emulator_options())`). A test that cannot apply to a carrier
is overridden in the subclass with a `pytest.skip(reason)`, never silently dropped.

What the emulator must do for the contract: read `raw[<name>]` codes from scenario events, call
`self.stats.record_batch(request.path, <numbers in the request>)` for every tracking request,
accept only the credentials `settings()` gives (`api_key="test-token"`, `secret="test-secret"`)
and serve the `auth`, `quota` and `unknown` faults. The adapter must subclass
`carriers.httpadapter.HttpAdapter` (the contract passes `sleep=` to record backoff waits).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from carriers.base import (
    AdapterSettings,
    CarrierAlarm,
    InvalidNumber,
    NotFound,
    TemporaryFailure,
    Tracked,
    TrackResult,
)
from carriers.breaker import CircuitBreaker
from carriers.emulators.server import EmulatorServer
from carriers.http import RetryPolicy
from carriers.httpadapter import HttpAdapter
from carriers.numbers import s10_check_digit
from carriers.ratelimit import Limiter, Unlimited
from carriers.registry import adapter_class
from carriers.status import Status

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
FAST_RETRY = RetryPolicy(
    attempts=3, initial_delay=0.01, max_delay=0.05, jitter=0.01, max_retry_after=2
)


def s10(i: int, country: str, service: str = "RR") -> str:
    """The i-th valid UPU S10 number of `country` (check digit computed)."""
    serial = f"{10_000_000 + i:08d}"
    return f"{service}{serial}{s10_check_digit(serial)}{country}"


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


class RecordingSleep:
    """Stands in for asyncio.sleep in the retry loop: records each wait, yields, does not wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


OWN_LIMITER = object()  # "let the adapter build its own limiter from its declared limits"


class AdapterContract:
    """Subclass as `Test<Name>Contract` and fill in the class attributes and `number()`."""

    adapter_name: ClassVar[str]
    emulator_class: ClassVar[type[EmulatorServer]]
    mapped_codes: ClassVar[Mapping[str, Status]]
    invalid_number: ClassVar[str]
    destination: ClassVar[str] = "BR"

    # -- hooks -----------------------------------------------------------------------------------

    def number(self, i: int) -> str:
        raise NotImplementedError

    def raw_code(self, code: str) -> str:
        return code

    def prepare(self, emulator: EmulatorServer, numbers: list[str]) -> None:
        return None

    def emulator_options(self) -> dict[str, Any]:
        return {}

    def settings(self, emulator: EmulatorServer, **overrides: Any) -> AdapterSettings:
        values: dict[str, Any] = {
            "base_url": emulator.url,
            "api_key": "test-token",
            "secret": "test-secret",
            "timeout_seconds": 0.5,
        }
        values.update(overrides)
        return AdapterSettings(**values)

    # -- helpers ---------------------------------------------------------------------------------

    def make_adapter(
        self,
        emulator: EmulatorServer,
        *,
        settings: AdapterSettings | None = None,
        limiter: Any = None,
        breaker: CircuitBreaker | None = None,
        clock: FakeClock | None = None,
        sleep: RecordingSleep | None = None,
    ) -> HttpAdapter:
        cls = adapter_class(self.adapter_name)
        assert issubclass(cls, HttpAdapter)
        chosen: Limiter | None = None if limiter is OWN_LIMITER else (limiter or Unlimited())
        clock = clock or FakeClock()
        return cls(
            settings or self.settings(emulator),
            clock=clock,
            limiter=chosen,
            retry=FAST_RETRY,
            breaker=breaker or CircuitBreaker(failure_threshold=1000, clock=clock),
            sleep=sleep or RecordingSleep(),
        )

    def parcel(self, number: str, *events: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"number": number, "destination": self.destination, "events": list(events), **extra}

    def journey(self, number: str) -> dict[str, Any]:
        """A parcel from China, in transit: two first-mile events and one last-mile event."""
        return self.parcel(
            number,
            {"at": at(9), "status": "info_received", "leg": "first_mile", "utc_offset": "+08:00",
             "location": "SHENZHEN", "description": "Shipment information received"},
            {"at": at(8), "status": "in_transit", "leg": "first_mile", "utc_offset": "+08:00",
             "location": "GUANGZHOU", "description": "Departed from sorting center"},
            {"at": at(2), "status": "in_transit", "leg": "last_mile", "utc_offset": "-03:00",
             "location": "CURITIBA - PR", "description": "Objeto em transferência"},
        )  # fmt: skip

    @pytest.fixture
    def emulator(self) -> Iterator[EmulatorServer]:
        with self.emulator_class(now=NOW, **self.emulator_options()) as emu:
            yield emu

    @pytest.fixture
    async def adapter(self, emulator: EmulatorServer) -> AsyncIterator[HttpAdapter]:
        adapter = self.make_adapter(emulator)
        yield adapter
        await adapter.aclose()

    async def track_one(self, adapter: HttpAdapter, number: str) -> TrackResult:
        results = await adapter.track([number])
        assert [r.number for r in results] == [number]
        return results[0]

    # -- normalisation ---------------------------------------------------------------------------

    async def test_normalises_every_mapped_code(
        self, emulator: EmulatorServer, adapter: HttpAdapter
    ) -> None:
        codes = list(self.mapped_codes.items())
        numbers = [self.number(i) for i in range(len(codes))]
        emulator.load_scenario(
            {
                "parcels": [
                    self.parcel(
                        n,
                        {"at": at(3), "status": "info_received", "leg": "first_mile"},
                        {"at": at(1), "status": expected.value, "raw": {self.adapter_name: code}},
                    )
                    for n, (code, expected) in zip(numbers, codes, strict=True)
                ]
            }
        )
        self.prepare(emulator, numbers)
        results = {r.number: r for r in await adapter.track(numbers)}
        for n, (code, expected) in zip(numbers, codes, strict=True):
            result = results[n]
            if expected is Status.NOT_FOUND:
                assert isinstance(result, NotFound | InvalidNumber), (code, result)
                continue
            assert isinstance(result, Tracked), (code, result)
            assert result.status is expected, code
            newest = result.events[0]
            assert (newest.status, newest.raw_code) == (expected, self.raw_code(code))

    async def test_events_are_utc_newest_first_with_raw_codes(
        self, emulator: EmulatorServer, adapter: HttpAdapter
    ) -> None:
        number = self.number(1)
        emulator.load_scenario({"parcels": [self.journey(number)]})
        self.prepare(emulator, [number])
        result = await self.track_one(adapter, number)
        assert isinstance(result, Tracked)
        assert result.status is Status.IN_TRANSIT
        times = [e.occurred_at for e in result.events]
        assert times == sorted(times, reverse=True)
        assert all(t.utcoffset() == timedelta(0) for t in times)
        assert times[0] == NOW - timedelta(days=2)
        assert all(e.raw_code for e in result.events)

    # -- batching and per-number answers ----------------------------------------------------------

    async def test_batches_never_exceed_batch_size(
        self, emulator: EmulatorServer, adapter: HttpAdapter
    ) -> None:
        numbers = [self.number(i) for i in range(adapter.batch_size * 2 + 1)]
        emulator.load_scenario({"parcels": [self.journey(n) for n in numbers[::2]]})
        results = await adapter.track(numbers)
        assert sorted(r.number for r in results) == sorted(numbers)
        assert not [r for r in results if isinstance(r, TemporaryFailure)]
        stats = emulator.stats.snapshot()
        assert stats["batch_sizes"], "the emulator must record numbers per request"
        assert max(stats["max_batch"].values()) <= adapter.batch_size

    async def test_unknown_number_is_not_found(self, adapter: HttpAdapter) -> None:
        number = self.number(7)
        assert isinstance(await self.track_one(adapter, number), NotFound)

    async def test_invalid_number_is_invalid(self, adapter: HttpAdapter) -> None:
        result = await self.track_one(adapter, self.invalid_number)
        assert isinstance(result, InvalidNumber)

    async def test_one_result_per_distinct_number(
        self, emulator: EmulatorServer, adapter: HttpAdapter
    ) -> None:
        a, b = self.number(1), self.number(2)
        emulator.load_scenario({"parcels": [self.journey(a)]})
        self.prepare(emulator, [a, b])
        results = await adapter.track([a, b, a])
        assert sorted(r.number for r in results) == sorted([a, b])

    async def test_unknown_fault_gives_not_found(
        self, emulator: EmulatorServer, adapter: HttpAdapter
    ) -> None:
        number = self.number(1)
        emulator.load_scenario({"parcels": [self.journey(number)]})
        self.prepare(emulator, [number])
        emulator.set_faults({"rules": [{"fault": "unknown"}]})
        assert isinstance(await self.track_one(adapter, number), NotFound)

    # -- transient failures ------------------------------------------------------------------------

    @pytest.mark.parametrize("fault", ["500", "503", "429", "reset", "timeout", "truncated"])
    async def test_transient_faults_are_retried(
        self, emulator: EmulatorServer, adapter: HttpAdapter, fault: str
    ) -> None:
        number = self.number(1)
        emulator.load_scenario({"parcels": [self.journey(number)]})
        self.prepare(emulator, [number])
        emulator.set_faults({"rules": [{"fault": fault, "first": 2, "delay": 2}]})
        assert isinstance(await self.track_one(adapter, number), Tracked)
        assert emulator.stats.snapshot()["faults"] == {fault: 2}

    async def test_slow_reply_within_the_timeout_is_fine(
        self, emulator: EmulatorServer, adapter: HttpAdapter
    ) -> None:
        number = self.number(1)
        emulator.load_scenario({"parcels": [self.journey(number)]})
        self.prepare(emulator, [number])
        emulator.set_faults({"rules": [{"fault": "slow", "delay": 0.1}]})
        assert isinstance(await self.track_one(adapter, number), Tracked)

    async def test_temporary_failure_after_retries_are_exhausted(
        self, emulator: EmulatorServer, adapter: HttpAdapter
    ) -> None:
        numbers = [self.number(1), self.number(2)]
        emulator.set_faults({"rules": [{"fault": "503"}]})
        results = await adapter.track(numbers)
        assert [type(r) for r in results] == [TemporaryFailure, TemporaryFailure]
        requests = emulator.stats.snapshot()["total"]
        batches = math.ceil(len(numbers) / adapter.batch_size)
        assert requests == FAST_RETRY.attempts * batches

    async def test_retry_after_is_honoured(self, emulator: EmulatorServer) -> None:
        number = self.number(1)
        emulator.load_scenario({"parcels": [self.journey(number)]})
        self.prepare(emulator, [number])
        emulator.set_faults({"rules": [{"fault": "429", "first": 1, "retry_after": 1.5}]})
        sleep = RecordingSleep()
        async with self.make_adapter(emulator, sleep=sleep) as adapter:
            assert isinstance(await self.track_one(adapter, number), Tracked)
        assert sleep.waits and sleep.waits[0] >= 1.5

    async def test_retry_after_beyond_the_budget_is_passed_on(
        self, emulator: EmulatorServer, adapter: HttpAdapter
    ) -> None:
        emulator.set_faults({"rules": [{"fault": "429", "retry_after": 600}]})
        result = await self.track_one(adapter, self.number(1))
        assert isinstance(result, TemporaryFailure) and result.retry_after == 600
        assert emulator.stats.snapshot()["total"] == 1

    @pytest.mark.parametrize("fault", ["malformed", "content_type"])
    async def test_unreadable_answer_is_a_temporary_failure(
        self, emulator: EmulatorServer, adapter: HttpAdapter, fault: str
    ) -> None:
        number = self.number(1)
        emulator.load_scenario({"parcels": [self.journey(number)]})
        self.prepare(emulator, [number])
        emulator.set_faults({"rules": [{"fault": fault}]})
        assert isinstance(await self.track_one(adapter, number), TemporaryFailure)

    # -- limits ------------------------------------------------------------------------------------

    async def test_rate_limit_is_never_exceeded(self, emulator: EmulatorServer) -> None:
        async with self.make_adapter(emulator, limiter=OWN_LIMITER) as adapter:
            allowed = max(1, math.floor(adapter.per_second()))
            numbers = [self.number(i) for i in range(allowed + 2)]
            emulator.load_scenario({"parcels": [self.journey(n) for n in numbers]})
            self.prepare(emulator, numbers)
            # One call per number, all at once: without a limiter they would arrive together.
            await asyncio.gather(*(adapter.track([n]) for n in numbers))
        stats = emulator.stats.snapshot()
        assert stats["total"] > allowed
        assert stats["peak_per_second"] <= allowed

    # -- circuit breaker -------------------------------------------------------------------------

    async def test_breaker_opens_and_other_carriers_are_unaffected(
        self, emulator: EmulatorServer
    ) -> None:
        number = self.number(1)
        clock = FakeClock()
        breaker = CircuitBreaker(failure_threshold=2, cooldown=30, clock=clock)
        with self.emulator_class(now=NOW, **self.emulator_options()) as healthy_emu:
            for emu in (emulator, healthy_emu):
                emu.load_scenario({"parcels": [self.journey(number)]})
                self.prepare(emu, [number])
            emulator.set_faults({"rules": [{"fault": "503"}]})
            broken = self.make_adapter(emulator, breaker=breaker, clock=clock)
            healthy = self.make_adapter(healthy_emu)
            async with broken, healthy:
                for _ in range(2):
                    assert isinstance(await self.track_one(broken, number), TemporaryFailure)
                spent = emulator.stats.snapshot()["total"]
                fast, fine = await asyncio.gather(broken.track([number]), healthy.track([number]))
                assert isinstance(fast[0], TemporaryFailure) and fast[0].retry_after == 30
                assert emulator.stats.snapshot()["total"] == spent  # failed fast, no request
                assert isinstance(fine[0], Tracked)
                # After the cool-down one trial call goes through and closes the breaker.
                emulator.set_faults(None)
                clock.now += timedelta(seconds=31)
                assert isinstance(await self.track_one(broken, number), Tracked)

    # -- alarms --------------------------------------------------------------------------------------

    async def test_auth_failure_raises_an_alarm_without_retrying(
        self, emulator: EmulatorServer, adapter: HttpAdapter
    ) -> None:
        emulator.set_faults({"rules": [{"fault": "auth"}]})
        with pytest.raises(CarrierAlarm):
            await adapter.track([self.number(1)])
        assert emulator.stats.snapshot()["total"] == 1

    async def test_wrong_credentials_raise_an_alarm(self, emulator: EmulatorServer) -> None:
        settings = self.settings(emulator, api_key="wrong-key", secret="wrong-secret")
        async with self.make_adapter(emulator, settings=settings) as adapter:
            with pytest.raises(CarrierAlarm):
                await adapter.track([self.number(1)])

    async def test_quota_exhausted_raises_an_alarm(
        self, emulator: EmulatorServer, adapter: HttpAdapter
    ) -> None:
        number = self.number(1)
        emulator.load_scenario({"parcels": [self.journey(number)]})
        self.prepare(emulator, [number])
        emulator.set_faults({"rules": [{"fault": "quota"}]})
        with pytest.raises(CarrierAlarm):
            await adapter.track([number])
