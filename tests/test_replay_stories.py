"""Replays that tell real stories: order events, daemon outages, kept mails, and replaying the
seller's own database (`parcelwatch replay --from-db`).

The policy's stage rules change often; these tests assert only what any policy must do: nothing
goes to a buyer after a dispute, an opt-out, a closing or a cancellation; no job runs while the
daemon is down; a new tracking number is the one polled.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from carriers.numbers import s10_check_digit
from daemon.cli import app
from daemon.db import SchemaError, open_read_only
from daemon.history import scenario_from_db
from daemon.importer import validate_record
from daemon.order_store import REMOVED
from daemon.simulate import ReplayScenario
from tests.conftest import SHIPPED_CONFIG

SHIP = datetime(2026, 8, 3, tzinfo=UTC)
# Steps at 12:00 UTC: 09:00 in Brazil, outside its quiet hours, so buyer messages leave the day
# they are due.
START = SHIP + timedelta(hours=12)
EVENT_DAY = SHIP + timedelta(days=35)  # past Brazil's first stage, before its last


def _number(serial: int) -> str:
    digits = f"{serial:08d}"
    return f"QQ{digits}{s10_check_digit(digits)}BR"


def _order(order_id: str, number: str) -> dict[str, Any]:
    return {"order_id": order_id, "buyer_name": "Ana", "email": f"{order_id.lower()}@example.com",
            "locale": "pt-BR", "country": "BR", "ship_date": SHIP.date().isoformat(),
            "tracking_numbers": [number], "product": "Lamp"}  # fmt: skip


def _stuck(number: str) -> dict[str, Any]:
    """A parcel that reaches Brazil and is never seen again: every stage falls due."""
    return {"number": number, "destination": "BR", "events": [
        {"at": _at(1, 10), "status": "in_transit", "description": "Accepted by the carrier"},
        {"at": _at(14, 10), "status": "in_transit", "description": "Arrived in Brazil"}]}  # fmt: skip


def _delivered(number: str, day: int) -> dict[str, Any]:
    return {"number": number, "destination": "BR", "events": [
        {"at": _at(1, 10), "status": "in_transit", "description": "Accepted by the carrier"},
        {"at": _at(day, 10), "status": "delivered", "description": "Delivered"}]}  # fmt: skip


def _at(day: int, hour: int = 0) -> str:
    return (SHIP + timedelta(days=day, hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scenario(days: int, orders: list[dict[str, Any]], parcels: list[dict[str, Any]],
              **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"start": START.isoformat(), "until": (START + timedelta(days=days)).isoformat(),
            "step_hours": 24, "orders": orders, "parcels": parcels, **extra}  # fmt: skip


def _run(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["replay", *args, "--config", str(SHIPPED_CONFIG)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def _time(line: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(line["at"] if "event" in line else line["due_at"]))


def _sent_to_buyer(lines: list[dict[str, Any]], order_id: str) -> list[datetime]:
    return [
        datetime.fromisoformat(str(r["sent_at"]))
        for r in lines
        if r.get("order_id") == order_id and r.get("audience") == "buyer" and r.get("sent_at")
    ]


# --- one story, several orders: each order event against a control order -----------------------

# Neutral order numbers: a message quoting "BR-DISPUTE" would break the content rules (no
# mention of disputes) and be held, not sent.
CONTROL, SWAP = "BR-201", "BR-206"
STOPS = {"BR-202": "dispute_opened", "BR-203": "opted_out", "BR-204": "closed",
         "BR-205": "cancelled"}  # fmt: skip
OLD, NEW = _number(31_000_001), _number(31_000_002)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Five stuck parcels to Brazil, four of whose orders stop mid-way, and an order whose
    number is replaced on day 5 (the old one never found, the new one delivered on day 15)."""
    root = tmp_path_factory.mktemp("story")
    ids = [CONTROL, *STOPS]
    orders = [_order(oid, _number(30_000_000 + i)) for i, oid in enumerate(ids)]
    parcels = [_stuck(_number(30_000_000 + i)) for i in range(len(ids))]
    orders.append(_order(SWAP, OLD))
    parcels.append(_delivered(NEW, 15))
    events = [{"at": EVENT_DAY.isoformat(), "order_id": oid, "event": kind}
              for oid, kind in STOPS.items()]  # fmt: skip
    events.append({"at": _at(5, 6), "order_id": SWAP, "event": "tracking_replaced",
                   "tracking_numbers": [NEW]})  # fmt: skip
    path = root / "story.json"
    path.write_text(json.dumps(_scenario(62, orders, parcels, order_events=events)))
    mail = root / "mail"
    lines = _run(str(path), "--workdir", str(root / "work"), "--mail-dir", str(mail))
    return {"lines": lines, "db": root / "work" / "parcelwatch.db", "mail": mail, "orders": orders}


def test_the_control_order_hears_from_us_after_the_event_day(story: dict[str, Any]) -> None:
    """Without this, the tests below would prove nothing: a stuck parcel does get messages
    after day 35."""
    assert [t for t in _sent_to_buyer(story["lines"], CONTROL) if t > EVENT_DAY]


@pytest.mark.parametrize("order_id", sorted(STOPS))
def test_an_order_stopped_mid_way_gets_no_buyer_message_after_it(
    story: dict[str, Any], order_id: str
) -> None:
    assert all(t <= EVENT_DAY for t in _sent_to_buyer(story["lines"], order_id))
    shown = [r for r in story["lines"] if r.get("event") and r["order_id"] == order_id]
    assert shown == [{"event": STOPS[order_id], "order_id": order_id,
                      "at": EVENT_DAY.strftime("%Y-%m-%dT%H:%M:%SZ")}]  # fmt: skip


def test_order_events_change_the_order_as_the_product_does(story: dict[str, Any]) -> None:
    with sqlite3.connect(story["db"]) as db:
        states = dict(db.execute("SELECT order_id, state FROM orders").fetchall())
        reason = db.execute("SELECT state_reason FROM orders WHERE order_id = 'BR-203'").fetchone()[
            0
        ]
    assert states == {CONTROL: "open", "BR-202": "disputed", "BR-203": "opted_out",
                      "BR-204": "closed", "BR-205": "cancelled", SWAP: "open"}  # fmt: skip
    assert reason.startswith("opted out by replay")  # daemon.review.opt_out


def test_a_replaced_tracking_number_is_polled_and_the_old_one_closed(
    story: dict[str, Any],
) -> None:
    with sqlite3.connect(story["db"]) as db:
        shipments = {
            number: (closed, error)
            for number, closed, error in db.execute(
                "SELECT tracking_number, closed, poll_error FROM shipments s JOIN orders o "
                "ON o.id = s.order_pk WHERE o.order_id = 'BR-206'"
            )
        }
        found = db.execute(
            "SELECT e.status, e.recorded_at FROM tracking_events e JOIN shipments s "
            "ON s.id = e.shipment_id WHERE s.tracking_number = ?",
            (NEW,),
        ).fetchall()
    assert shipments[OLD] == (1, REMOVED)
    assert {status for status, _ in found} == {"in_transit", "delivered"}
    assert min(recorded for _, recorded in found) >= _at(5, 6).replace("T", " ").rstrip("Z")
    swap = [r for r in story["lines"] if r.get("order_id") == SWAP and r.get("event")]
    assert swap == [{"event": "tracking_replaced", "order_id": SWAP, "at": _at(5, 6),
                     "tracking_numbers": [NEW]}]  # fmt: skip


def test_events_are_printed_in_time_order_among_the_messages(story: dict[str, Any]) -> None:
    times = [_time(line) for line in story["lines"]]
    assert times == sorted(times)
    assert sum(1 for line in story["lines"] if "event" in line) == len(STOPS) + 1


def test_mail_dir_keeps_one_eml_per_email_sent_to_its_buyer(story: dict[str, Any]) -> None:
    emails = [r for r in story["lines"] if r.get("state") == "sent" and r["channel"] == "email"]
    kept = [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(story["mail"].glob("*.eml"))
    ]
    assert len(kept) == len(emails)
    address = {o["order_id"]: o["email"] for o in story["orders"]}
    expected = Counter(address[r["order_id"]] for r in emails if r["audience"] == "buyer")
    to = [m["To"].addresses[0].addr_spec for m in kept]
    received = Counter(a for a in to if a in address.values())
    assert expected and received == expected


# --- outages ------------------------------------------------------------------------------------


def test_nothing_happens_while_the_daemon_is_down_and_it_catches_up_after(tmp_path: Path) -> None:
    """The parcel is delivered on day 20, inside an outage from day 18 to day 25: the delivery is
    polled, decided and told only once the daemon is back."""
    down, up = SHIP + timedelta(days=18), SHIP + timedelta(days=25)
    path = tmp_path / "outage.json"
    path.write_text(json.dumps(_scenario(
        27, [_order("BR-1", _number(32_000_001)), _order("BR-2", _number(32_000_002))],
        [_delivered(_number(32_000_001), 20), _stuck(_number(32_000_002))],
        outages=[{"from": down.isoformat(), "until": up.isoformat()}])))  # fmt: skip
    lines = _run(str(path), "--workdir", str(tmp_path / "work"))
    with sqlite3.connect(tmp_path / "work" / "parcelwatch.db") as db:
        created = [
            datetime.fromisoformat(c).replace(tzinfo=UTC)
            for (c,) in db.execute("SELECT created_at FROM outreach")
        ]
        polled = [
            datetime.fromisoformat(r).replace(tzinfo=UTC)
            for (r,) in db.execute("SELECT recorded_at FROM tracking_events")
        ]
    assert created and not [c for c in created if down <= c < up]
    assert not [p for p in polled if down <= p < up]
    delivered = [r for r in lines if r["order_id"] == "BR-1" and r["kind"] == "delivered"]
    assert delivered and datetime.fromisoformat(delivered[0]["sent_at"]) >= up


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"order_events": [{"at": _at(3), "order_id": "BR-1", "event": "lost"}]},
         "order_events[1].event: 'lost' is not one of"),
        ({"order_events": [{"at": _at(3), "order_id": "BR-9", "event": "closed"}]},
         "order_events[1].order_id: 'BR-9' is not one of the scenario's orders"),
        ({"order_events": [{"at": _at(3), "order_id": "BR-1", "event": "closed"},
                           {"at": "next tuesday", "order_id": "BR-1", "event": "closed"}]},
         "order_events[2].at: not an ISO 8601 time"),
        ({"order_events": [{"at": _at(3), "order_id": "BR-1", "event": "tracking_replaced"}]},
         "order_events[1].tracking_numbers: required"),
        ({"order_events": [{"at": _at(3), "order_id": "BR-1", "event": "tracking_replaced",
                            "tracking_numbers": ["no!"]}]},
         "order_events[1].tracking_numbers: 'no!' is not 5-50 letters and digits"),
        ({"outages": [{"from": _at(5), "until": _at(4)}]},
         "outages[1].until: '" + _at(4) + "' is not after 'from'"),
        ({"outages": [{"from": _at(5)}]}, "outages[1].until: required"),
    ],
)  # fmt: skip
def test_a_bad_order_event_or_outage_is_named_by_file_index_and_key(
    tmp_path: Path, extra: dict[str, Any], expected: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_scenario(5, [_order("BR-1", _number(1))], [], **extra)))
    result = CliRunner().invoke(app, ["replay", str(path), "--config", str(SHIPPED_CONFIG)])
    assert result.exit_code == 1
    assert f"{path}: {expected}" in result.stderr


# --- replaying the seller's own database ------------------------------------------------------


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A replay's database used as a seller's history: one parcel delivered, one stuck, one
    order disputed on day 20 and one opted out on day 22."""
    root = tmp_path_factory.mktemp("history")
    numbers = [_number(33_000_000 + i) for i in range(4)]
    orders = [_order(f"BR-{i}", n) for i, n in enumerate(numbers)]
    orders[0] |= {"source": "shopify", "promised_days": 60, "timezone": "America/Sao_Paulo",
                  "quantity": 2, "carrier": "correios", "channel": "email",
                  "order_value": "129.90", "currency": "BRL"}  # fmt: skip
    parcels = [_delivered(numbers[0], 12), *(_stuck(n) for n in numbers[1:])]
    events = [{"at": _at(20), "order_id": "BR-2", "event": "dispute_opened"},
              {"at": _at(22, 7), "order_id": "BR-3", "event": "opted_out"}]  # fmt: skip
    original = _scenario(30, orders, parcels, order_events=events)
    path = root / "original.json"
    path.write_text(json.dumps(original))
    _run(str(path), "--workdir", str(root / "seller"))
    database = root / "seller" / "parcelwatch.db"
    config = root / "config.toml"
    config.write_text(_with_database(SHIPPED_CONFIG.read_text(), database))
    return {"original": original, "database": database, "config": config, "root": root}


def _with_database(config_text: str, database: Path) -> str:
    return config_text.replace("sqlite:///parcelwatch.db", f"sqlite:///{database}")


def _import_fields(orders: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each order as the import reads it, without its line number."""
    rows = [validate_record(i, o)[0] for i, o in enumerate(orders, start=1)]
    return sorted(tuple(row)[1:] for row in rows if row is not None)


def _timelines(parcels: Any) -> dict[str, list[tuple[datetime, str, str]]]:
    return {
        number: [(e.at, e.status.value, e.description) for e in parcel.events]
        for number, parcel in parcels.parcels.items()
    }


def test_from_db_rebuilds_the_orders_parcels_and_their_changes(history: dict[str, Any]) -> None:
    original = ReplayScenario.from_dict(history["original"], "original")
    engine = open_read_only(f"sqlite:///{history['database']}")
    try:
        rebuilt = scenario_from_db(engine, SHIP, where="seller")
    finally:
        engine.dispose()
    assert _import_fields(rebuilt.orders) == _import_fields(original.orders)
    assert _timelines(rebuilt.parcels) == _timelines(original.parcels)
    assert rebuilt.order_events == original.order_events
    assert rebuilt.start == SHIP


def test_replay_from_db_moves_a_stage_with_the_window_and_leaves_the_database_alone(
    history: dict[str, Any],
) -> None:
    changed = history["root"] / "changed.toml"
    changed.write_text(
        history["config"]
        .read_text()
        .replace(
            "stages = { tracking_update = 30, reassurance = 45, extension = 83, refund_offer = 60 }",
            "stages = { tracking_update = 25, reassurance = 40, extension = 83, refund_offer = 55 }",
        )
    )
    before = hashlib.sha256(history["database"].read_bytes()).hexdigest()
    runs = {}
    for name, config in (("shipped", history["config"]), ("changed", changed)):
        result = CliRunner().invoke(app, [
            "replay", "--from-db", "--since", SHIP.date().isoformat(), "--until",
            (SHIP + timedelta(days=31)).date().isoformat(), "--step-hours", "12",
            "--config", str(config), "--workdir", str(history["root"] / f"replay-{name}")])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "4 orders read" in result.stderr and "day 32 of 32 simulated" in result.stderr
        runs[name] = [json.loads(line) for line in result.stdout.splitlines()]
    assert hashlib.sha256(history["database"].read_bytes()).hexdigest() == before

    def first_stage(lines: list[dict[str, Any]]) -> str:
        stages = [
            r["due_at"]
            for r in lines
            if r.get("order_id") == "BR-1" and r.get("trigger") == "stage"
        ]
        assert stages, lines
        return str(min(stages))

    # The stuck parcel's first stage message comes five days earlier with Brazil at 25/40/55.
    assert first_stage(runs["changed"]) < first_stage(runs["shipped"])
    shown = [r for r in runs["shipped"] if "event" in r]
    assert [(r["event"], r["order_id"]) for r in shown] == [("dispute_opened", "BR-2"),
                                                            ("opted_out", "BR-3")]  # fmt: skip


def test_from_db_without_orders_in_the_range_is_invalid_input(history: dict[str, Any]) -> None:
    result = CliRunner().invoke(app, ["replay", "--from-db", "--since", "2030-01-01",
                                      "--config", str(history["config"])])  # fmt: skip
    assert result.exit_code == 1
    assert "no orders shipped from 2030-01-01" in result.stderr


def test_from_db_on_a_database_without_the_schema_is_a_schema_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    config = tmp_path / "config.toml"
    config.write_text(_with_database(SHIPPED_CONFIG.read_text(), empty))
    result = CliRunner().invoke(app, ["replay", "--from-db", "--since", "2026-08-01",
                                      "--config", str(config)])  # fmt: skip
    assert result.exit_code == 3
    assert "has no parcelwatch schema" in result.stderr
    missing = tmp_path / "missing.db"
    with pytest.raises(SchemaError, match="no such database file"):
        open_read_only(f"sqlite:///{missing}")
    assert not missing.exists()
