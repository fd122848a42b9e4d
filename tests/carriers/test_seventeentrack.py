"""17TRACK specifics: the status table per code, the documented body, rejections, register, retrack."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from carriers.base import (
    AdapterSettings,
    CarrierAlarm,
    InvalidNumber,
    NotFound,
    TemporaryFailure,
    Tracked,
)
from carriers.emulators.seventeentrack import DEFAULT_SUB_STATUS, SeventeenTrackEmulator
from carriers.ratelimit import Unlimited
from carriers.registry import UnknownAdapter, build_adapter
from carriers.seventeentrack import SeventeenTrackAdapter
from carriers.seventeentrack_codes import STATUS_TABLE, status_for
from carriers.status import Status
from tests.carriers.contract import FAST_RETRY, NOW, OWN_LIMITER, RecordingSleep
from tests.carriers.test_contract_seventeentrack import TestSeventeenTrackContract as _Contract

S = Status
CONTRACT = _Contract()

# Written out again, independently of the table, from reference §1.4.
EXPECTED = {
    "NotFound_Other": S.NOT_FOUND, "NotFound_InvalidCode": S.NOT_FOUND,
    "InfoReceived": S.INFO_RECEIVED,
    "InTransit_PickedUp": S.IN_TRANSIT, "InTransit_Other": S.IN_TRANSIT,
    "InTransit_Departure": S.IN_TRANSIT, "InTransit_Arrival": S.IN_TRANSIT,
    "InTransit_CustomsProcessing": S.CUSTOMS_HOLD, "InTransit_CustomsReleased": S.IN_TRANSIT,
    "InTransit_CustomsRequiringInformation": S.CUSTOMS_PAYMENT_DUE,
    "Expired_Other": S.EXPIRED,
    "AvailableForPickup_Other": S.AVAILABLE_FOR_PICKUP,
    "OutForDelivery_Other": S.OUT_FOR_DELIVERY,
    "DeliveryFailure_Other": S.DELIVERY_FAILURE, "DeliveryFailure_NoBody": S.DELIVERY_FAILURE,
    "DeliveryFailure_Security": S.DELIVERY_FAILURE, "DeliveryFailure_Rejected": S.DELIVERY_FAILURE,
    "DeliveryFailure_InvalidAddress": S.DELIVERY_FAILURE,
    "Delivered_Other": S.DELIVERED,
    "Exception_Other": S.EXCEPTION, "Exception_Returning": S.RETURNING,
    "Exception_Returned": S.RETURNED, "Exception_NoBody": S.DELIVERY_FAILURE,
    "Exception_Security": S.EXCEPTION, "Exception_Damage": S.EXCEPTION,
    "Exception_Rejected": S.DELIVERY_FAILURE, "Exception_Delayed": S.IN_TRANSIT,
    "Exception_Lost": S.EXCEPTION, "Exception_Destroyed": S.EXCEPTION,
    "Exception_Cancel": S.EXCEPTION,
}  # fmt: skip


def test_the_table_covers_all_30_sub_statuses() -> None:
    assert len(EXPECTED) == 30
    assert set(STATUS_TABLE) == set(EXPECTED)


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED.items()))
def test_sub_status_maps_to(code: str, expected: Status) -> None:
    assert status_for(code.split("_")[0], code) is expected


def test_unknown_sub_statuses_fall_back_to_their_main_status() -> None:
    assert status_for("InTransit", "InTransit_Teleported") is S.IN_TRANSIT
    assert status_for("Delivered", None) is S.DELIVERED
    assert status_for("InfoReceived", None) is S.INFO_RECEIVED
    assert status_for(None, "Exception_Kidnapped") is S.EXCEPTION
    assert status_for("Vanished", None) is None


@pytest.mark.parametrize("status", list(Status))
def test_emulator_codes_read_back_as_the_same_status(status: Status) -> None:
    assert status_for(None, DEFAULT_SUB_STATUS[status]) is status


# -- the documented body (reference §1.7), served by a MockTransport --------------------------

SAMPLE_EVENT = {
    "time_iso": "2024-05-21T09:12:00-03:00", "time_utc": "2024-05-21T12:12:00Z",
    "time_raw": {"date": "2024-05-21", "time": "09:12:00", "timezone": "-03:00"},
    "description": "Encaminhado para fiscalização aduaneira", "location": "CURITIBA - PR",
    "stage": None, "sub_status": "InTransit_CustomsProcessing",
}  # fmt: skip
SAMPLE = {
    "code": 0,
    "data": {
        "accepted": [{
            "number": "RR123456785CN", "carrier": 3011, "param": None, "tag": "order-1001",
            "track_info": {
                "latest_status": {"status": "InTransit", "sub_status": "InTransit_CustomsProcessing",
                                  "sub_status_descr": None},
                "latest_event": SAMPLE_EVENT,
                "tracking": {"providers_hash": 1428303510, "providers": [{
                    "provider": {"key": 2151, "name": "Correios Brazil", "alias": "Correios",
                                 "country": "BR"},
                    "latest_sync_status": "Success", "events": [SAMPLE_EVENT],
                }]},
            },
        }],
        "rejected": [{"number": "LP00000000000000",
                      "error": {"code": -18019909, "message": "No tracking information at this time."}}],
    },
}  # fmt: skip


def mock_adapter(*answers: Any, seen: list[httpx.Request] | None = None) -> SeventeenTrackAdapter:
    """An adapter whose transport answers with `answers` in turn (dicts as JSON, ints as status)."""
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, int):
            return httpx.Response(answer)
        return httpx.Response(200, json=answer)

    settings = AdapterSettings(base_url="https://api.17track.net/track/v2.2", api_key="k")
    return SeventeenTrackAdapter(
        settings, transport=httpx.MockTransport(handler), limiter=Unlimited(), retry=FAST_RETRY,
        sleep=RecordingSleep(),
    )  # fmt: skip


async def test_documented_sample_parses() -> None:
    seen: list[httpx.Request] = []
    async with mock_adapter(SAMPLE, seen=seen) as adapter:
        results = await adapter.track(["RR123456785CN", "LP00000000000000"])
    tracked, missing = results
    assert tracked == Tracked(
        number="RR123456785CN",
        status=S.CUSTOMS_HOLD,
        raw_status="InTransit_CustomsProcessing",
        events=(
            tracked.events[0].__class__(
                occurred_at=datetime(2024, 5, 21, 12, 12, tzinfo=UTC),
                status=S.CUSTOMS_HOLD,
                raw_code="InTransit_CustomsProcessing",
                description="Encaminhado para fiscalização aduaneira",
                location="CURITIBA - PR",
                source="Correios Brazil",
            ),
        ),
        carrier="seventeentrack",
    )
    assert isinstance(missing, NotFound)
    request = seen[0]
    assert request.url.path == "/track/v2.2/gettrackinfo"
    assert request.headers["17token"] == "k"
    assert json.loads(request.content) == [
        {"number": "RR123456785CN"},
        {"number": "LP00000000000000"},
    ]


def rejected(code: int, number: str = "RR123456785CN") -> dict[str, Any]:
    return {"code": 0, "data": {"accepted": [], "rejected": [
        {"number": number, "error": {"code": code, "message": f"error {code}"}}]}}  # fmt: skip


@pytest.mark.parametrize(
    ("code", "expected"),
    [(-18019909, NotFound), (-18010012, InvalidNumber), (-18019910, TemporaryFailure)],
)
async def test_per_number_rejections(code: int, expected: type) -> None:
    async with mock_adapter(rejected(code)) as adapter:
        (result,) = await adapter.track(["RR123456785CN"])
    assert isinstance(result, expected)


@pytest.mark.parametrize("code", [-18010001, -18010002, -18010004, -18010005, -18019907, -18019908])
async def test_operator_problems_raise_an_alarm(code: int) -> None:
    async with mock_adapter(rejected(code)) as adapter:
        with pytest.raises(CarrierAlarm):
            await adapter.track(["RR123456785CN"])
    async with mock_adapter({"code": code, "data": {"errors": [{"code": code}]}}) as adapter:
        with pytest.raises(CarrierAlarm):
            await adapter.track(["RR123456785CN"])


@pytest.mark.parametrize("status", [401, 404])
async def test_http_401_and_404_raise_an_alarm(status: int) -> None:
    async with mock_adapter(status) as adapter:
        with pytest.raises(CarrierAlarm):
            await adapter.track(["RR123456785CN"])


async def test_top_level_internal_error_is_a_temporary_failure() -> None:
    async with mock_adapter({"code": -18010003, "data": {"errors": []}}) as adapter:
        (result,) = await adapter.track(["RR123456785CN"])
    assert isinstance(result, TemporaryFailure)


async def test_a_field_of_the_wrong_type_is_named_in_the_failure() -> None:
    event = {**SAMPLE_EVENT, "time_utc": 1716293520}
    answer = json.loads(json.dumps(SAMPLE))
    answer["data"]["accepted"][0]["track_info"]["tracking"]["providers"][0]["events"] = [event]
    async with mock_adapter(answer) as adapter:
        (result,) = await adapter.track(["RR123456785CN"])
    assert isinstance(result, TemporaryFailure)
    assert "data.accepted.0.track_info.tracking.providers.0.events.0.time_utc" in result.detail
    assert "valid string" in result.detail


async def test_already_registered_is_fine() -> None:
    answers = (rejected(-18019902), rejected(-18019901), SAMPLE)
    async with mock_adapter(*answers) as adapter:
        (result,) = await adapter.track(["RR123456785CN"])
    assert isinstance(result, Tracked)


# -- through the emulator ---------------------------------------------------------------------


@pytest.fixture
def emulator() -> Any:
    with SeventeenTrackEmulator(now=NOW) as emu:
        yield emu


def adapter_for(emu: SeventeenTrackEmulator, **kwargs: Any) -> SeventeenTrackAdapter:
    adapter = CONTRACT.make_adapter(emu, **kwargs)
    assert isinstance(adapter, SeventeenTrackAdapter)
    return adapter


async def test_unregistered_numbers_are_registered_then_read(
    emulator: SeventeenTrackEmulator,
) -> None:
    number = "RR123456785CN"
    emulator.load_scenario({"parcels": [CONTRACT.journey(number)]})
    async with adapter_for(emulator) as adapter:
        (first,) = await adapter.track([number])
        (second,) = await adapter.track([number])
    assert isinstance(first, Tracked) and first == second
    assert {e.source for e in first.events} == {"China Post", "Correios Brazil"}
    by_endpoint = emulator.stats.snapshot()["by_endpoint"]
    assert by_endpoint == {"/track/v2.2/gettrackinfo": 3, "/track/v2.2/register": 1}


async def test_a_number_the_carrier_finds_invalid_at_registration(
    emulator: SeventeenTrackEmulator,
) -> None:
    emulator.load_scenario({"parcels": [{"number": "RR123456785CN", "invalid": True}]})
    async with adapter_for(emulator) as adapter:
        (result,) = await adapter.track(["RR123456785CN"])
    assert isinstance(result, InvalidNumber)


async def test_registration_quota_exhausted_raises_an_alarm() -> None:
    with SeventeenTrackEmulator(now=NOW, quota=0) as emu:
        async with adapter_for(emu) as adapter:
            with pytest.raises(CarrierAlarm, match="quota"):
                await adapter.track(["RR123456785CN"])


@pytest.mark.parametrize("quirk", ["time_raw_string", "duplicate_entry", "no_event_sub_status"])
async def test_quirks_read_the_same(emulator: SeventeenTrackEmulator, quirk: str) -> None:
    number = "RR123456785CN"
    parcel = CONTRACT.journey(number)
    parcel["events"].append(
        {"at": "2026-05-20T10:00:00Z", "status": "delivered", "utc_offset": "-03:00"}
    )
    parcel["quirks"] = [quirk]
    emulator.load_scenario({"parcels": [parcel]})
    emulator.register(number)
    async with adapter_for(emulator) as adapter:
        (result,) = await adapter.track([number])
    assert isinstance(result, Tracked)
    assert result.status is S.DELIVERED
    assert result.events[0].occurred_at == datetime(2026, 5, 20, 10, tzinfo=UTC)
    assert result.events[-1].occurred_at == NOW - timedelta(days=9)
    assert result.events[0].status is S.DELIVERED
    assert len(result.events) == 4


async def test_a_stopped_number_is_retracked_and_stays_watched(
    emulator: SeventeenTrackEmulator,
) -> None:
    number = "RR123456785CN"
    parcel = CONTRACT.journey(number)
    late = NOW + timedelta(days=35)  # after 17TRACK gave up (30 days without news)
    parcel["events"].append({"at": late.isoformat(), "status": "delivered"})
    emulator.load_scenario({"parcels": [parcel]})
    emulator.register(number)
    emulator.set_clock(NOW + timedelta(days=40))
    async with adapter_for(emulator) as adapter:
        (result,) = await adapter.track([number])
    assert isinstance(result, Tracked) and result.status is S.DELIVERED
    assert emulator.stats.snapshot()["by_endpoint"]["/track/v2.2/retrack"] == 1


async def test_expired_that_cannot_be_retracked_is_reported(
    emulator: SeventeenTrackEmulator,
) -> None:
    number = "RR123456785CN"
    emulator.load_scenario({"parcels": [{"number": number, "events": [
        {"at": "2026-05-01T00:00:00Z", "status": "expired"}]}]})  # fmt: skip
    emulator.register(number)
    async with adapter_for(emulator) as adapter:
        (result,) = await adapter.track([number])
        (again,) = await adapter.track([number])
    assert isinstance(result, Tracked) and result.status is S.EXPIRED
    assert again == result
    # One retrack attempt (refused: not stopped), not one per poll.
    assert emulator.stats.snapshot()["by_endpoint"]["/track/v2.2/retrack"] == 1


async def test_daily_limit_from_settings_gives_temporary_failures(
    emulator: SeventeenTrackEmulator,
) -> None:
    number = "RR123456785CN"
    emulator.load_scenario({"parcels": [CONTRACT.journey(number)]})
    emulator.register(number)
    settings = CONTRACT.settings(emulator, daily_limit=1)
    async with adapter_for(emulator, settings=settings, limiter=OWN_LIMITER) as adapter:
        (first,) = await adapter.track([number])
        (second,) = await adapter.track([number])
    assert isinstance(first, Tracked)
    assert isinstance(second, TemporaryFailure) and second.retry_after
    assert emulator.stats.snapshot()["total"] == 1


async def test_numbers_are_answered_as_the_caller_wrote_them(
    emulator: SeventeenTrackEmulator,
) -> None:
    emulator.load_scenario({"parcels": [CONTRACT.journey("RR123456785CN")]})
    async with adapter_for(emulator) as adapter:
        (result,) = await adapter.track(["rr123456785cn"])
    assert isinstance(result, Tracked) and result.number == "rr123456785cn"


def test_more_than_40_numbers_are_refused_by_the_emulator(emulator: SeventeenTrackEmulator) -> None:
    body = [{"number": f"RR{i:08d}5CN"} for i in range(41)]
    answer = httpx.post(
        emulator.url + "/gettrackinfo", json=body, headers={"17token": "test-token"}
    ).json()
    assert answer["code"] == -18010014


async def test_registry_builds_the_adapter_by_name(emulator: SeventeenTrackEmulator) -> None:
    adapter = build_adapter("seventeentrack", CONTRACT.settings(emulator))
    assert isinstance(adapter, SeventeenTrackAdapter)
    assert adapter.batch_size == 40 and adapter.rate_limit.per_second == 3
    await adapter.aclose()
    with pytest.raises(UnknownAdapter):
        build_adapter("pigeon", CONTRACT.settings(emulator))


@pytest.mark.parametrize(("configured", "effective"), [(None, 3), (1.0, 1.0), (10.0, 3)])
async def test_settings_may_lower_the_rate_limit_never_raise_it(
    configured: float | None, effective: float
) -> None:
    settings = AdapterSettings(base_url="http://127.0.0.1:9", rate_limit_per_second=configured)
    async with SeventeenTrackAdapter(settings) as adapter:
        assert adapter.per_second() == effective


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"time_utc": "2024-05-21T12:12:00Z", "time_iso": "2024-05-21T09:12:00-03:00"}, "12:12"),
        ({"time_utc": "2024-05-21T12:12:00"}, "12:12"),  # naive UTC stays UTC
        ({"time_iso": "2024-05-21T09:12:00-03:00"}, "12:12"),
        ({"time_iso": "2024-05-21T09:12:00", "time_raw": {"timezone": "-03:00"}}, "12:12"),
        ({"time_raw": {"date": "2024-05-21", "time": "09:12:00", "timezone": "-03:00"}}, "12:12"),
        ({"time_raw": "2024-05-21 12:12"}, "12:12"),
        ({"time_raw": "2024/05/21 12:12:00"}, "12:12"),
        ({"time_raw": "yesterday"}, None),
        ({}, None),
    ],
)
def test_event_times_are_read_defensively(fields: dict[str, Any], expected: str | None) -> None:
    from carriers.seventeentrack import EVENT, event_time

    when = event_time(EVENT.validate_python(fields))
    if expected is None:
        assert when is None
    else:
        assert when is not None and when.tzinfo is not None
        assert when.astimezone(UTC).strftime("%Y-%m-%d %H:%M") == f"2024-05-21 {expected}"
