"""Carrier faults: whatever one carrier does, the poll job goes on, the others are unaffected, and
what only a person can fix shows as an alarm in the log and in `parcelwatch status`."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from carriers.emulators.faults import FaultPlan
from carriers.http import RetryPolicy
from daemon.clock import VirtualClock
from daemon.config import load_config
from daemon.db import make_engine, upgrade
from daemon.importer import parse_file
from daemon.models import Shipment, TrackingEvent
from daemon.order_store import import_rows
from daemon.sandbox import EMULATOR_ENV, World, sandbox_config, start_world
from daemon.wiring import build_runtime
from tests.conftest import SHIPPED_CONFIG, Workspace

T0 = datetime(2026, 10, 1, tzinfo=UTC)
SCENARIO = {
    "parcels": [
        {"number": n, "destination": dest, "events": [
            {"at": (T0 + timedelta(days=1)).isoformat(), "status": "in_transit", "description": "Accepted"},
            {"at": (T0 + timedelta(days=5)).isoformat(), "status": "in_transit", "description": "Departed"},
        ]}
        for n, dest in (("QQ850419295BR", "BR"), ("RR123456785CN", "US"), ("RA123456785RU", "RU"))
    ]
}  # fmt: skip
NUMBERS = {"seventeentrack": "RR123456785CN", "correios": "QQ850419295BR"}
QUICK = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05, jitter=0.0)


class Bed:
    def __init__(self, tmp: Path) -> None:
        self.world: World = start_world(SCENARIO, T0)
        self.url = f"sqlite:///{tmp / 'pw.db'}"
        self.config_path = tmp / "config.toml"
        text = sandbox_config(SHIPPED_CONFIG.read_text(), self.world, self.url)
        self.config_path.write_text(text.replace("timeout_seconds = 30", "timeout_seconds = 1"))
        self.engine = make_engine(self.url)
        upgrade(self.engine)
        orders = tmp / "o.csv"
        orders.write_text(
            "order_id,country,ship_date,tracking_numbers\n"
            "B,BR,2026-10-01,QQ850419295BR\nU,US,2026-10-01,RR123456785CN\n"
        )
        import_rows(self.engine, parse_file(orders).rows, T0)
        self.clock = VirtualClock(T0 + timedelta(days=6))
        self.world.set_clock(self.clock())
        self.runtime = build_runtime(
            load_config(self.config_path), self.engine, self.clock, owner="t", carrier_limits=False
        )
        for adapter in self.runtime.poller.adapters.values():
            adapter.retry = QUICK  # type: ignore[attr-defined]
        self.loop = asyncio.new_event_loop()  # one loop for every poll: the HTTP pool lives in it

    def poll(self) -> Any:
        with Session(self.engine) as s:
            s.execute(update(Shipment).values(next_check_at=None))
            s.commit()
        return self.loop.run_until_complete(self.runtime.poller.run_once())

    def events(self, number: str) -> int:
        with Session(self.engine) as s:
            ship = s.execute(
                select(Shipment).where(Shipment.tracking_number == number)  # type: ignore[arg-type]
            ).scalar_one()
            return len(
                s.execute(
                    select(TrackingEvent).where(TrackingEvent.shipment_id == ship.id)  # type: ignore[arg-type]
                ).all()
            )

    def status(self) -> dict[str, Any]:
        ws = Workspace(self.config_path.parent, self.config_path, self.url)
        result = ws.run("status", "--json")
        assert result.exit_code == 0, result.output
        data: dict[str, Any] = json.loads(result.stdout)
        human = ws.run("status")
        data["human"] = human.stdout
        return data


@pytest.fixture
def bed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bed]:
    for key, value in EMULATOR_ENV.items():
        monkeypatch.setenv(key, value)
    b = Bed(tmp_path)
    try:
        yield b
    finally:
        b.loop.run_until_complete(b.runtime.close())
        b.loop.close()
        b.engine.dispose()
        b.world.stop()


TRANSIENT = [
    {"fault": "429", "retry_after": 0.01},
    {"fault": "500"},
    {"fault": "503", "retry_after": 0.01},
    {"fault": "timeout", "delay": 1.5},
    {"fault": "reset"},
    {"fault": "malformed"},
    {"fault": "truncated"},
    {"fault": "content_type"},
]


@pytest.mark.parametrize("faulty", sorted(NUMBERS))
@pytest.mark.parametrize("rule", TRANSIENT, ids=lambda r: r["fault"])
def test_a_failing_carrier_leaves_the_others_and_recovers(
    bed: Bed, faulty: str, rule: dict[str, Any]
) -> None:
    healthy = next(n for n in NUMBERS if n != faulty)
    bed.world.carriers.emulators[faulty].set_faults(FaultPlan.of(rule))
    report = bed.poll()  # does not raise
    assert report.failures.get(faulty), report
    assert bed.events(NUMBERS[faulty]) == 0 and bed.events(NUMBERS[healthy]) == 2
    with Session(bed.engine) as s:
        ship = s.execute(
            select(Shipment).where(Shipment.tracking_number == NUMBERS[faulty])  # type: ignore[arg-type]
        ).scalar_one()
    assert ship.poll_error and ship.lease_owner == ""
    bed.world.carriers.emulators[faulty].set_faults(None)
    bed.clock.set(bed.clock() + timedelta(hours=3))  # past any breaker pause
    bed.poll()
    assert bed.events(NUMBERS[faulty]) == 2  # nothing lost: the whole history arrives later


@pytest.mark.parametrize("kind", ["auth", "quota"])
def test_a_revoked_key_or_spent_quota_is_an_alarm_in_the_log_and_in_status(
    bed: Bed, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    bed.world.carriers.emulators["seventeentrack"].set_faults(FaultPlan.of({"fault": kind}))
    with caplog.at_level(logging.ERROR, logger="parcelwatch"):
        report = bed.poll()
    assert report.alarms
    assert any(r.getMessage() == "carrier alarm" for r in caplog.records)
    assert bed.events(NUMBERS["correios"]) == 2  # Correios unaffected
    status = bed.status()
    assert [a["source"] for a in status["alarms"]] == ["carrier:seventeentrack"]
    assert "carrier:seventeentrack" in status["human"] and "ALARM " in status["human"]
    for value in EMULATOR_ENV.values():
        assert value not in json.dumps(status["alarms"])
    bed.world.carriers.emulators["seventeentrack"].set_faults(None)
    bed.clock.set(bed.clock() + timedelta(hours=2))
    bed.poll()
    status = bed.status()
    assert status["alarms"] == [] and "no open alarms" in status["human"]
    assert bed.events(NUMBERS["seventeentrack"]) == 2


def test_a_burst_of_errors_then_success_stores_everything_once(bed: Bed) -> None:
    bed.world.carriers.emulators["seventeentrack"].set_faults(
        FaultPlan.of({"fault": "503", "first": 2, "retry_after": 0.01})
    )
    report = bed.poll()  # retried inside one poll
    assert not report.failures.get("seventeentrack")
    assert bed.events(NUMBERS["seventeentrack"]) == 2
    bed.poll()
    assert bed.events(NUMBERS["seventeentrack"]) == 2


def test_a_carrier_down_for_good_is_an_alarm_a_blip_is_not(
    bed: Bed, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = bed.world.carriers.emulators["seventeentrack"]
    emulator.set_faults(FaultPlan.of({"fault": "503"}))
    bed.poll()
    assert bed.status()["alarms"] == []  # one failed poll is a blip, retried soon
    with caplog.at_level(logging.ERROR, logger="parcelwatch"):
        for _ in range(6):  # enough failures in a row to open the circuit
            bed.poll()
    status = bed.status()
    assert [a["source"] for a in status["alarms"]] == ["carrier:seventeentrack"]
    assert "unreachable" in status["alarms"][0]["message"] and "ALARM " in status["human"]
    assert any(r.getMessage() == "carrier unreachable" for r in caplog.records)
    assert bed.events(NUMBERS["correios"]) == 2  # Correios unaffected throughout
    emulator.set_faults(None)
    bed.clock.set(bed.clock() + timedelta(hours=3))
    bed.world.set_clock(bed.clock())
    bed.poll()
    assert bed.status()["alarms"] == [] and bed.events(NUMBERS["seventeentrack"]) == 2
