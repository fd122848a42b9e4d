"""Parcel stories replayed through the real daemon jobs, checked against what the buyer may be told.

One scenario, one Brazilian order per story, replayed on loopback (carrier emulators, the SMTP
sink, SQLite) with staff approving offers and carrying out extensions as they would: a parcel
waiting at the pickup point, one waiting for the buyer's customs payment, a number never found,
a parcel returned, a parcel stalled and then delivered. Each story checks which messages went out
and on which day, and which were held. Then the demo scenario's emails are read as a buyer would:
no remedy outside a refund offer, no "on its way" in a message decided while the buyer had to act,
never two emails to one buyer in one moment, every promised date kept.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from carriers.numbers import s10_check_digit
from daemon.cli import app
from messages.phrases import ON_ITS_WAY, REMEDIES, found
from tests.conftest import SHIPPED_CONFIG

SHIP = datetime(2026, 8, 3, tzinfo=UTC)
START = SHIP + timedelta(hours=12)  # 09:00 in Brazil: outside its quiet hours


def _number(serial: int) -> str:
    digits = f"{serial:08d}"
    return f"QQ{digits}{s10_check_digit(digits)}BR"


def _at(day: float) -> str:
    return (SHIP + timedelta(days=day, hours=10)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _events(*steps: tuple[float, str, str]) -> list[dict[str, Any]]:
    return [{"at": _at(d), "status": s, "description": text, "location": "CURITIBA"}
            for d, s, text in steps]  # fmt: skip


# A parcel moving every week (never stalled) until day 35.
MOVING = [(d, "in_transit", "Objeto em trânsito") for d in (1, 7, 14, 21, 28, 34)]
STORIES: dict[str, list[dict[str, Any]]] = {
    "PICKUP": _events(
        *MOVING,
        (40, "available_for_pickup", "Aguardando retirada"),
        (48, "delivered", "Objeto entregue ao destinatário"),
    ),
    "PAYMENT": _events(
        *MOVING,
        (35, "customs_payment_due", "Aguardando pagamento"),
        (50, "in_transit", "Pagamento confirmado"),
        (58, "delivered", "Objeto entregue ao destinatário"),
    ),
    "NEVERFOUND": [],
    "RETURNED": _events(
        (1, "in_transit", "Objeto postado"),
        (14, "in_transit", "Objeto em trânsito"),
        (25, "returning", "Objeto devolvido ao remetente"),
    ),
    "STALLED": _events(
        (1, "in_transit", "Objeto postado"),
        (5, "in_transit", "Objeto em trânsito"),
        (40, "delivered", "Objeto entregue ao destinatário"),
    ),
}


@pytest.fixture(scope="module")
def stories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The replay's log, by story, with each row's day after shipment."""
    root = tmp_path_factory.mktemp("stories")
    orders, parcels = [], []
    for i, (story, events) in enumerate(STORIES.items()):
        number = _number(44_000_000 + i)
        orders.append({"order_id": f"BR-{story}", "source": "aliexpress", "buyer_name": "Ana",
                       "email": f"{story.lower()}@example.com", "locale": "pt-BR",
                       "country": "BR", "ship_date": SHIP.date().isoformat(),
                       "tracking_numbers": [number], "order_value": "89.90",
                       "currency": "BRL"})  # fmt: skip
        if events:
            parcels.append({"number": number, "destination": "BR", "events": events})
    scenario = {"start": START.isoformat(), "until": (START + timedelta(days=75)).isoformat(),
                "step_hours": 12, "orders": orders, "parcels": parcels}  # fmt: skip
    path = root / "stories.json"
    path.write_text(json.dumps(scenario))
    result = CliRunner().invoke(
        app, ["replay", str(path), "--config", str(SHIPPED_CONFIG), "--workdir", str(root / "w")]
    )
    assert result.exit_code == 0, result.output
    by_story: dict[str, list[dict[str, Any]]] = {story: [] for story in STORIES}
    for line in result.stdout.splitlines():
        row = json.loads(line)
        story = str(row.get("order_id", "")).removeprefix("BR-")
        if story in by_story:
            row["day"] = (datetime.fromisoformat(row["due_at"]) - SHIP) / timedelta(days=1)
            by_story[story].append(row)
    return by_story


def _day(moment: str) -> float:
    return (datetime.fromisoformat(moment) - SHIP) / timedelta(days=1)


def _sent(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each buyer kind that went out, with the day it was due."""
    return {r["kind"]: r["day"] for r in rows if r["audience"] == "buyer" and r["state"] == "sent"}


def _state(rows: list[dict[str, Any]], kind: str) -> str | None:
    return next((r["state"] for r in rows if r["kind"] == kind), None)


def test_a_parcel_at_the_pickup_point_is_told_and_reminded_never_called_on_its_way(
    stories: dict[str, list[dict[str, Any]]],
) -> None:
    rows = stories["PICKUP"]
    sent = _sent(rows)
    assert int(sent["tracking_update"]) == 30
    assert int(sent["ready_for_pickup"]) == 40 and int(sent["pickup_reminder"]) == 45
    assert int(sent["delivered"]) == 48
    assert "reassurance" not in sent  # day 45: waiting at the pickup point, held, then delivered
    assert _state(rows, "reassurance") == "withdrawn"
    assert "refund_offer" not in {r["kind"] for r in rows}


def test_a_parcel_waiting_for_customs_payment_gets_its_reassurance_once_paid(
    stories: dict[str, list[dict[str, Any]]],
) -> None:
    sent = _sent(stories["PAYMENT"])
    assert int(sent["customs_payment_due"]) == 35
    # Due on day 45 while the buyer still had to pay: held, then sent on the payment (day 50).
    reassurance = next(r for r in stories["PAYMENT"] if r["kind"] == "reassurance")
    assert reassurance["state"] == "sent" and int(_day(reassurance["sent_at"])) == 50
    assert int(sent["delivered"]) == 58
    assert "refund_offer" not in sent  # the refund clock paused 15 days: day 75, after delivery


def test_a_number_never_found_is_told_with_a_person_and_an_offer_never_a_tracking_update(
    stories: dict[str, list[dict[str, Any]]],
) -> None:
    rows = stories["NEVERFOUND"]
    sent = _sent(rows)
    assert int(sent["tracking_not_found"]) == 5
    assert int(sent["refund_offer"]) == 5  # composed and approved by staff the same day
    assert "tracking_update" not in sent and "reassurance" not in sent
    assert _state(rows, "staff_tracking_not_found") in ("sent", "manual_pending")


def test_a_returned_parcel_is_told_with_a_person_writing_and_gets_no_stage(
    stories: dict[str, list[dict[str, Any]]],
) -> None:
    sent = _sent(stories["RETURNED"])
    assert int(sent["returned_to_sender"]) == 25 and int(sent["refund_offer"]) == 25
    assert "tracking_update" not in sent and "reassurance" not in sent


def test_a_stalled_parcel_is_reassured_early_then_confirmed_delivered(
    stories: dict[str, list[dict[str, Any]]],
) -> None:
    sent = _sent(stories["STALLED"])
    assert 25 <= sent["reassurance"] < 26  # 20 days without news since day 5
    assert "tracking_update" not in sent  # superseded by the reassurance
    assert int(sent["delivered"]) == 40


# --- The demo, read as its buyers would ---------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(app, ["demo", "--speed", "0", "--workspace", str(root)])
    assert result.exit_code == 0, result.output
    return root


def _rows(root: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(root / "parcelwatch.db") as db:
        db.row_factory = sqlite3.Row
        return [
            dict(r)
            for r in db.execute(
                "SELECT o.order_id, o.source, x.* FROM outreach x JOIN orders o ON o.id = x.order_pk"
            )
        ]


def _delivered_at(root: Path) -> dict[str, datetime]:
    """Each order's last delivery, for orders whose every parcel was delivered."""
    with sqlite3.connect(root / "parcelwatch.db") as db:
        rows = db.execute(
            "SELECT o.order_id, MAX(s.delivered_at), SUM(s.delivered_at IS NULL) FROM orders o "
            "JOIN shipments s ON s.order_pk = o.id WHERE s.poll_error != 'removed' "
            "GROUP BY o.order_id"
        ).fetchall()
    return {
        order: datetime.fromisoformat(last).replace(tzinfo=UTC)
        for order, last, undelivered in rows
        if last and not undelivered
    }


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_demos_emails_promise_nothing_that_was_not_done_or_approved(demo: Path) -> None:
    rows = _rows(demo)
    sent = [r for r in rows if r["audience"] == "buyer" and r["state"] == "sent"]
    assert len(sent) > 20
    for row in sent:
        text = f"{row['subject']}\n{row['body_text']}"
        locale = row["locale"]
        if row["kind"] != "refund_offer":
            assert not found(REMEDIES, text, locale), (row["order_id"], row["kind"])
        if row["situation"] not in ("", "on_its_way"):
            assert not found(ON_ITS_WAY, text, locale), (row["order_id"], row["kind"])
    extensions = [r for r in sent if r["kind"] == "extension"]
    for extension in extensions:
        action = next(
            r
            for r in rows
            if r["order_id"] == extension["order_id"] and r["kind"] == "extend_protection"
        )
        assert action["state"] == "sent"  # carried out (marked done by staff) first
        assert _time(action["sent_at"]) <= _time(extension["sent_at"])  # type: ignore[operator]
        assert extension["source"] == "aliexpress"


def test_the_demos_buyers_get_one_email_at_a_time_and_every_promised_date_kept(
    demo: Path,
) -> None:
    rows = _rows(demo)
    sent = [r for r in rows if r["audience"] == "buyer" and r["state"] == "sent"]
    moments = Counter((r["order_id"], r["sent_at"]) for r in sent)
    assert max(moments.values()) == 1
    delivered = _delivered_at(demo)
    end = max(_time(r["sent_at"]) for r in sent)  # type: ignore[type-var]
    for row in sent:
        promised = _time(row["next_update_at"])
        if promised is None or promised > end:
            continue
        after = [
            _time(r["sent_at"])
            for r in sent
            if r["order_id"] == row["order_id"] and r["sent_at"] > row["sent_at"]
        ]
        # Sent by the end of the promised day's morning (quiet hours end at 08:00 local).
        kept = any(t is not None and t <= promised + timedelta(hours=14) for t in after)
        arrived = row["order_id"] in delivered and delivered[row["order_id"]] <= promised
        assert kept or arrived, (row["order_id"], row["kind"], row["next_update_at"])


def _mail(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_the_demos_mails_on_disk_are_the_ones_logged(demo: Path) -> None:
    mails = [_mail(p) for p in sorted((demo / "mail").glob("*.eml"))]
    logged = {
        r["message_id"] for r in _rows(demo) if r["state"] == "sent" and r["channel"] == "email"
    }
    assert {m["Message-ID"] for m in mails} == logged
