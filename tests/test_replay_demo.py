"""`parcelwatch replay` and `parcelwatch demo`: the real jobs on a virtual clock, on loopback."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from carriers.numbers import s10_check_digit
from daemon.cli import app
from tests.conftest import REPO, SHIPPED_CONFIG

SMALL = REPO / "tests" / "fixtures" / "replay_small.json"


def _replay(*args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(app, ["replay", str(SMALL), *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_replay_twice_gives_identical_output(tmp_path: Path) -> None:
    first = _replay("--config", str(SHIPPED_CONFIG))
    second = _replay("--config", str(SHIPPED_CONFIG))
    assert first == second
    kinds = {(r["order_id"], r["kind"]) for r in first}
    assert ("BR-1000", "delivered") in kinds  # delivered early
    assert ("BR-1002", "refund_offer") in kinds  # lost
    assert ("RU-1007", "staff_tracking_not_found") in kinds  # never found


def test_replay_shows_what_a_window_change_would_send(tmp_path: Path) -> None:
    changed = tmp_path / "config.toml"
    changed.write_text(
        SHIPPED_CONFIG.read_text().replace(
            "stages = { tracking_update = 30, reassurance = 45, extension = 83, refund_offer = 60 }",
            "stages = { tracking_update = 25, reassurance = 40, extension = 83, refund_offer = 55 }",
        )
    )
    shipped = {(r["order_id"], r["kind"]): r for r in _replay("--config", str(SHIPPED_CONFIG))}
    earlier = {(r["order_id"], r["kind"]): r for r in _replay("--config", str(changed))}
    offer_then, offer_now = (
        shipped[("BR-1002", "refund_offer")],
        earlier[("BR-1002", "refund_offer")],
    )
    assert str(offer_now["due_at"]) < str(offer_then["due_at"])


def test_replay_until_stops_early() -> None:
    lines = _replay("--config", str(SHIPPED_CONFIG), "--until", "2026-08-20")
    assert all(str(r["due_at"]) < "2026-08-21" for r in lines)
    # No stage's refund offer that early; only the one queued with a not-found notice (R1).
    offers = {r["order_id"] for r in lines if r["kind"] == "refund_offer"}
    not_found = {r["order_id"] for r in lines if r["kind"] == "tracking_not_found"}
    assert offers <= not_found


def test_replay_rejects_a_bad_scenario_with_its_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"orders": [{"order_id": "X", "country": "ZZ", "ship_date": "2026-01-01",
                                           "tracking_numbers": ["RR123456785CN"]}]}))  # fmt: skip
    result = CliRunner().invoke(app, ["replay", str(bad), "--config", str(SHIPPED_CONFIG)])
    assert result.exit_code == 1
    assert "orders[1].country: 'ZZ' is not an ISO 3166-1" in result.stderr
    assert str(bad) in result.stderr


def test_demo_runs_a_hundred_days_and_every_fate_gets_its_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--speed", "0", "--workspace", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = tmp_path / "config.toml"
    log = CliRunner().invoke(app, ["--config", str(config), "log", "--format", "jsonl"])
    rows = [json.loads(line) for line in log.stdout.splitlines()]
    sent = {(r["order_id"], r["kind"]) for r in rows if r["state"] in ("sent", "manual_pending")}
    expected = {
        ("BR-1000", "delivered"),  # delivered early
        ("BR-1001", "customs_payment_due"),  # customs hold with tax due
        ("BR-1002", "refund_offer"),  # lost
        ("BR-1003", "refund_offer"),  # delivered late: offered first...
        ("BR-1003", "delivered"),  # ...then it arrived
        ("RU-1006", "delivered"),  # stalled, then delivered
        ("RU-1007", "tracking_not_found"),  # never found
        ("US-1009", "returned_to_sender"),
        ("US-1010", "ready_for_pickup"),
        ("ES-1012", "delivery_failure"),  # address problem
        ("FR-1015", "customs_hold"),
        ("DE-1017", "review_request"),
    }
    assert expected <= sent, expected - sent
    emails = [r for r in rows if r["state"] == "sent" and r["channel"] == "email"]
    assert len(list((tmp_path / "mail").glob("*.eml"))) == len(emails)
    assert not [r for r in rows if r["state"] in ("failed", "needs_review")]
    assert "emails received by the local SMTP sink" in result.stdout


def test_a_replay_step_does_everything_due_as_a_daemon_would(tmp_path: Path) -> None:
    """More parcels than one poll run claims and more messages than one send run takes, all on
    the same day: the replay sends every one that day, as a daemon ticking all day would."""
    count = 260  # the send job takes 200 rows a run
    orders, parcels = [], []
    for i in range(count):
        number = f"RR{20_000_000 + i:08d}{s10_check_digit(f'{20_000_000 + i:08d}')}CN"
        orders.append({"order_id": f"FR-{i}", "buyer_name": "B", "email": f"b{i}@example.com",
                       "locale": "fr", "country": "FR", "ship_date": "2026-09-01",
                       "tracking_numbers": [number]})  # fmt: skip
        parcels.append({"number": number, "destination": "FR", "events": [
            {"at": "2026-09-02T10:00:00Z", "status": "in_transit"},
            {"at": "2026-09-05T10:00:00Z", "status": "delivered"}]})  # fmt: skip
    scenario = tmp_path / "many.json"
    scenario.write_text(json.dumps({"start": "2026-09-01T12:00:00Z", "until": "2026-09-06T12:00:00Z",
                                    "step_hours": 24, "approve": "none", "orders": orders,
                                    "parcels": parcels}))  # fmt: skip
    result = CliRunner().invoke(app, ["replay", str(scenario), "--config", str(SHIPPED_CONFIG)])
    assert result.exit_code == 0, result.output
    delivered = [r for r in map(json.loads, result.stdout.splitlines()) if r["kind"] == "delivered"]
    assert len(delivered) == count
    assert {str(r["sent_at"])[:10] for r in delivered} == {"2026-09-05"}
