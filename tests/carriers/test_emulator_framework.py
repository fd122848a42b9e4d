"""The emulator machinery: scenario on a virtual clock, faults, accounting, control endpoints."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest

from carriers.emulators.faults import FaultPlan
from carriers.emulators.sandbox import demo_scenario, emulator_class, start_sandbox
from carriers.emulators.scenario import Scenario, ScenarioError
from carriers.emulators.server import peak_in_window
from tests.carriers.echo_emulator import EchoEmulator

SCENARIO = {
    "clock": "2026-05-01T00:00:00Z",
    "parcels": [
        {
            "number": "rr123456785cn",
            "destination": "BR",
            "events": [
                {"at": "2026-05-03T00:00:00Z", "status": "in_transit"},
                {"at": "2026-04-30T10:00:00+08:00", "status": "info_received", "leg": "first_mile"},
            ],
        }
    ],
}


def test_scenario_parses_sorts_and_normalises() -> None:
    scenario = Scenario.from_dict(SCENARIO)
    parcel = scenario.get("RR123456785CN")
    assert parcel is not None
    assert [e.status.value for e in parcel.events] == ["info_received", "in_transit"]
    assert parcel.events[0].at == datetime(2026, 4, 30, 2, tzinfo=UTC)
    assert Scenario.from_dict(scenario.to_dict()) == scenario


@pytest.mark.parametrize(
    "bad",
    [
        {"parcels": [{"events": []}]},
        {
            "parcels": [
                {"number": "X", "events": [{"at": "2026-05-01T00:00:00Z", "status": "lost"}]}
            ]
        },
        {
            "parcels": [
                {"number": "X", "events": [{"at": "2026-05-01T00:00:00", "status": "delivered"}]}
            ]
        },
    ],
)
def test_scenario_rejects_bad_input(bad: dict[str, object]) -> None:
    with pytest.raises(ScenarioError):
        Scenario.from_dict(bad)


def test_virtual_clock_decides_what_is_visible() -> None:
    with EchoEmulator(SCENARIO) as emu:
        url = emu.url + "/RR123456785CN"
        assert httpx.get(url).json()["events"] == ["info_received"]
        emu.advance(3 * 86400)
        assert httpx.get(url).json()["events"] == ["info_received", "in_transit"]
        assert httpx.get(emu.url + "/UNKNOWN").json()["events"] is None


def test_control_endpoints_drive_an_emulator_from_outside() -> None:
    with EchoEmulator() as emu:
        control = emu.origin + "/_emulator"
        assert httpx.post(control + "/scenario", json=SCENARIO).status_code == 200
        httpx.post(control + "/clock", json={"now": "2026-05-04T00:00:00Z"})
        assert httpx.get(emu.url + "/RR123456785CN").json()["events"] == [
            "info_received",
            "in_transit",
        ]
        httpx.post(control + "/clock", json={"advance_seconds": 60})
        assert httpx.get(control + "/clock").json()["now"] == "2026-05-04T00:01:00Z"
        httpx.post(
            control + "/faults", json={"rules": [{"fault": "503", "first": 1, "retry_after": 2}]}
        )
        refused = httpx.get(emu.url + "/x")
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "2"
        assert httpx.get(emu.url + "/x").status_code == 200
        stats = httpx.get(control + "/stats").json()
        assert stats["total"] == 3 and stats["faults"] == {"503": 1}
        httpx.delete(control + "/stats")
        assert httpx.get(control + "/stats").json()["total"] == 0
        assert httpx.post(control + "/scenario", json={"parcels": [{}]}).status_code == 400
        assert httpx.get(control + "/nope").status_code == 404


@pytest.mark.parametrize("fault", ["reset", "truncated", "timeout"])
def test_connection_level_faults_surface_as_transport_errors(fault: str) -> None:
    with EchoEmulator() as emu:
        emu.set_faults({"rules": [{"fault": fault, "delay": 1}]})
        with pytest.raises(httpx.TransportError):
            httpx.get(emu.url + "/x", timeout=0.3)


def test_body_faults() -> None:
    with EchoEmulator() as emu:
        emu.set_faults(
            FaultPlan.of({"fault": "malformed", "nth": [1]}, {"fault": "content_type", "nth": [2]})
        )
        with pytest.raises(json.JSONDecodeError):
            httpx.get(emu.url + "/x").json()
        assert httpx.get(emu.url + "/x").headers["content-type"].startswith("text/html")
        assert httpx.get(emu.url + "/x").json()["ok"] is True


def test_probability_faults_are_reproducible_with_a_seed() -> None:
    def run() -> list[int]:
        with EchoEmulator() as emu:
            emu.set_faults({"seed": 3, "rules": [{"fault": "500", "probability": 0.5}]})
            return [httpx.get(emu.url + "/x").status_code for _ in range(12)]

    first = run()
    assert first == run()
    assert 500 in first and 200 in first


def test_peak_in_window_counts_half_open_one_second_windows() -> None:
    assert peak_in_window([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert peak_in_window([]) == 0


async def test_emulator_serves_an_event_loop_in_the_same_process() -> None:
    async with EchoEmulator() as emu, httpx.AsyncClient() as client:
        assert (await client.get(emu.url + "/x")).json()["ok"] is True


def test_sandbox_starts_every_available_emulator() -> None:
    assert emulator_class("does_not_exist") is None
    with start_sandbox(SCENARIO) as sandbox:
        assert "seventeentrack" in sandbox.urls
        assert set(sandbox.urls) <= {"seventeentrack", "correios", "russianpost"}
        for name, emu in sandbox.emulators.items():
            health = httpx.get(emu.origin + "/_emulator/health").json()
            assert health == {"name": emu.name, "now": "2026-05-01T00:00:00Z"}, name


def test_sandbox_runs_as_another_process() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "carriers.emulators.sandbox",
            "--clock",
            "2026-05-01T00:00:00Z",
            "--port",
            f"seventeentrack={port}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["seventeentrack"]["url"] == f"http://127.0.0.1:{port}/track/v2.2"
        for entry in info.values():
            health = httpx.get(entry["control"] + "/health").json()
            assert health["now"] == "2026-05-01T00:00:00Z"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_the_demo_scenario_drives_the_aggregator() -> None:
    from carriers.base import AdapterSettings, Tracked
    from carriers.registry import build_adapter
    from carriers.status import Status

    expected = {
        "RR123456785CN": Status.CUSTOMS_PAYMENT_DUE,
        "QQ850419295BR": Status.DELIVERED,
        "RA644000005RU": Status.AVAILABLE_FOR_PICKUP,
        "45008378901234": Status.IN_TRANSIT,
        "YT2412345678901234": Status.IN_TRANSIT,
        "LP00612345678901": Status.RETURNING,
    }
    with start_sandbox(demo_scenario()) as sandbox:
        settings = AdapterSettings(base_url=sandbox.urls["seventeentrack"], api_key="test-token")
        adapter = build_adapter("seventeentrack", settings)
        results = await adapter.track(list(expected))
        await adapter.aclose()
    got = {r.number: r.status for r in results if isinstance(r, Tracked)}
    assert got == expected
