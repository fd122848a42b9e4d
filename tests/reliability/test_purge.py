"""`parcelwatch purge --older-than DAYS`: personal data leaves finished orders, statistics stay."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import Session

from daemon.db import make_engine
from daemon.models import Order, Outreach, Shipment
from tests.conftest import Workspace

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=400)
RECENT = NOW - timedelta(days=10)


def _order(s: Session, order_id: str, state: str, at: datetime, delivered: bool | None,
           log_state: str = "sent") -> None:  # fmt: skip
    pk = s.execute(insert(Order).values(order_id=order_id, buyer_name=f"Name {order_id}",
        email=f"{order_id.lower()}@example.com", phone="+5511999990000", country="BR",
        shipped_at=at, state=state, created_at=at, updated_at=at, product="Lamp")
        .returning(Order.id)).scalar_one()  # type: ignore[arg-type]  # fmt: skip
    if delivered is not None:
        s.execute(insert(Shipment).values(order_pk=pk, tracking_number=f"T{order_id}",
                  status="delivered" if delivered else "in_transit", closed=delivered,
                  delivered_at=at if delivered else None, last_event_at=at))  # fmt: skip
    s.execute(insert(Outreach).values(order_pk=pk, kind="tracking_update", trigger="stage",
              state=log_state, due_at=at, created_at=at, updated_at=at, sent_at=at,
              subject=f"Hello Name {order_id}", body_text=f"Dear Name {order_id}, ...",
              decision_note="called the buyer", last_error=""))  # fmt: skip


def _seed(ws: Workspace) -> None:
    engine = make_engine(ws.database_url)
    with Session(engine) as s:
        _order(s, "CLOSED-OLD", "closed", OLD, None)
        _order(s, "CANCELLED-OLD", "cancelled", OLD, False)
        _order(s, "OPTOUT-OLD", "opted_out", OLD, False)
        _order(s, "DELIVERED-OLD", "open", OLD, True)
        _order(s, "DELIVERED-UNSURE", "open", OLD, True, log_state="needs_review")
        _order(s, "TRANSIT-OLD", "open", OLD, False)
        _order(s, "DISPUTED-OLD", "disputed", OLD, False)
        _order(s, "CLOSED-RECENT", "closed", RECENT, None)
        s.commit()
    engine.dispose()


def _rows(ws: Workspace) -> dict[str, tuple[object, ...]]:
    db = sqlite3.connect(ws.database_url.removeprefix("sqlite:///"))
    rows = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT o.order_id, o.buyer_name, o.email, o.phone, r.subject, r.body_text, "
            "r.decision_note, o.country, o.state, o.shipped_at, r.kind, r.state, r.sent_at, "
            "o.product FROM orders o JOIN outreach r ON r.order_pk = o.id"
        )
    }
    db.close()
    return rows


PURGED = {"CLOSED-OLD", "CANCELLED-OLD", "OPTOUT-OLD", "DELIVERED-OLD"}


def test_purge_removes_personal_data_of_old_finished_orders_only(upgraded: Workspace) -> None:
    _seed(upgraded)
    before = _rows(upgraded)
    dry = upgraded.run("purge", "--older-than", "365", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["orders"] == 4 and _rows(upgraded) == before

    result = upgraded.run("purge", "--older-than", "365")
    assert result.exit_code == 0, result.output
    assert "purged buyer data of 4 orders and the texts of 4 log rows" in result.stdout
    after = _rows(upgraded)
    for order_id, row in after.items():
        if order_id in PURGED:
            assert row[:6] == ("", "", "", "", "", ""), order_id
            assert row[6:] == before[order_id][6:]  # country, state, dates, kind, states, product
        else:
            assert row == before[order_id], order_id
    dump = "\n".join(str(v) for v in after.values())
    for order_id in PURGED:
        assert f"Name {order_id}" not in dump and order_id.lower() + "@" not in dump

    again = upgraded.run("purge", "--older-than", "365", "--json")
    assert json.loads(again.stdout)["orders"] == 0  # nothing left to purge

    status = upgraded.run("status", "--json")
    assert status.exit_code == 0
    assert sum(json.loads(status.stdout)["outreach_states"].values()) == 8  # statistics intact


def test_purge_older_than_zero_takes_recent_closed_orders_too(upgraded: Workspace) -> None:
    _seed(upgraded)
    result = upgraded.run("purge", "--older-than", "0", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["orders"] == 5
    assert _rows(upgraded)["CLOSED-RECENT"][:3] == ("", "", "")
    assert _rows(upgraded)["TRANSIT-OLD"][0] == "Name TRANSIT-OLD"


def test_purge_needs_a_number_of_days(upgraded: Workspace, tmp_path: Path) -> None:
    assert upgraded.run("purge").exit_code != 0
    assert upgraded.run("purge", "--older-than", "-1").exit_code != 0
