"""Reviewing the outreach log through the CLI: filters, export, approvals, manual sends, opt-out, story."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from daemon.db import make_engine
from daemon.models import Order, OrderState, Outreach, OutreachState, Shipment, TrackingEvent
from tests.conftest import Workspace, copy_fixture

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _seed(ws: Workspace) -> dict[str, int]:
    """Orders from the fixture, plus log rows in the states staff deal with."""
    copy = copy_fixture("orders_good.csv", ws.root)
    assert ws.run("orders", "import", str(copy)).exit_code == 0
    engine = make_engine(ws.database_url)
    ids: dict[str, int] = {}
    with Session(engine) as s:
        orders = {o.order_id: o for o in s.exec(select(Order)).all()}
        ship = s.exec(select(Shipment).where(Shipment.tracking_number == "QQ850419295BR")).one()
        assert ship.id is not None
        s.add(TrackingEvent(shipment_id=ship.id, event_key="e1", occurred_at=T0 - timedelta(days=3),
                            status="customs_hold", raw_code="BDE/66", description="Fiscalização <b>aduaneira</b>",
                            location="CURITIBA - PR", recorded_at=T0))  # fmt: skip
        rows = {
            "offer_br": ("AE-1001", "refund_offer", OutreachState.AWAITING_APPROVAL, "email", 1),
            "offer_ru": ("AE-1002", "refund_offer", OutreachState.AWAITING_APPROVAL, "email", 2),
            "sent_br": ("AE-1001", "reassurance", OutreachState.SENT, "email", 0),
            "manual_fr": ("SH-2002", "tracking_update", OutreachState.MANUAL_PENDING, "manual", 3),
            "unknown_us": ("SH-2001", "tracking_update", OutreachState.NEEDS_REVIEW, "email", 4),
            "planned_br": ("AE-1001", "customs_hold", OutreachState.PLANNED, "email", 5),
        }
        for key, (oid, kind, st, channel, hours) in rows.items():
            order_pk = orders[oid].id
            assert order_pk is not None
            row = Outreach(order_pk=order_pk, kind=kind, trigger="stage", state=st, channel=channel,
                           reason=f"{kind} for {oid}", due_at=T0, created_at=T0 + timedelta(hours=hours),
                           updated_at=T0, needs_approval=kind == "refund_offer",
                           subject=f"About your order {oid}")  # fmt: skip
            s.add(row)
            s.commit()
            assert row.id is not None
            ids[key] = row.id
    engine.dispose()
    return ids


def _state(ws: Workspace, row_id: int) -> Outreach:
    engine = make_engine(ws.database_url)
    with Session(engine) as s:
        row = s.get(Outreach, row_id)
        assert row is not None
    engine.dispose()
    return row


@pytest.fixture
def seeded(upgraded: Workspace) -> tuple[Workspace, dict[str, int]]:
    return upgraded, _seed(upgraded)


def test_log_lists_and_filters(seeded: tuple[Workspace, dict[str, int]]) -> None:
    ws, _ = seeded
    everything = ws.run("log")
    assert everything.exit_code == 0, everything.output
    assert "6 entries" in everything.stdout
    assert "2 entries" in ws.run("log", "--kind", "refund_offer").stdout
    assert "3 entries" in ws.run("log", "--country", "br").stdout
    assert "1 entries" in ws.run("log", "--state", "manual_pending").stdout
    assert "1 entries" in ws.run("log", "--channel", "manual").stdout
    assert "1 entries" in ws.run("log", "--text", "Ivan").stdout  # buyer name
    assert "3 entries" in ws.run("log", "--order", "AE-1001").stdout
    assert "0 entries" in ws.run("log", "--since", "2026-11-02").stdout
    assert "6 entries" in ws.run("log", "--since", "2026-11-01", "--until", "2026-11-02").stdout
    bad = ws.run("log", "--since", "yesterday")
    assert bad.exit_code == 1 and "--since: 'yesterday' is not a date" in bad.stderr


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_log_exports(seeded: tuple[Workspace, dict[str, int]], fmt: str) -> None:
    ws, ids = seeded
    result = ws.run("log", "--kind", "refund_offer", "--format", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
    elif fmt == "json":
        rows = json.loads(result.stdout)
    else:
        rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(int(r["id"]) for r in rows) == sorted([ids["offer_br"], ids["offer_ru"]])
    assert {r["order_id"] for r in rows} == {"AE-1001", "AE-1002"}
    assert all(r["created_at"].startswith("2026-11-01T") for r in rows)


def test_approve_records_who_and_when(seeded: tuple[Workspace, dict[str, int]]) -> None:
    ws, ids = seeded
    result = ws.run(
        "log", "approve", str(ids["offer_br"]), "--reship", "--note", "buyer asked", "--by", "maria"
    )
    assert result.exit_code == 0, result.output
    row = _state(ws, ids["offer_br"])
    assert row.state == OutreachState.APPROVED
    assert (row.decided_by, row.decision_note) == ("maria", "buyer asked")
    assert row.decided_at is not None


def test_only_pending_entries_can_be_approved(seeded: tuple[Workspace, dict[str, int]]) -> None:
    ws, ids = seeded
    result = ws.run("log", "approve", str(ids["sent_br"]))
    assert result.exit_code == 1
    assert (
        f"log entry {ids['sent_br']} is sent; only awaiting_approval can be approved"
        in result.stderr
    )
    missing = ws.run("log", "approve", "99999")
    assert missing.exit_code == 1 and "no log entry 99999" in missing.stderr


def test_bulk_approve_by_filter(seeded: tuple[Workspace, dict[str, int]]) -> None:
    ws, ids = seeded
    result = ws.run("log", "approve", "--all", "--country", "RU", "--reship", "--by", "lead")
    assert result.exit_code == 0, result.output
    assert _state(ws, ids["offer_ru"]).state == OutreachState.APPROVED
    assert _state(ws, ids["offer_br"]).state == OutreachState.AWAITING_APPROVAL
    unguarded = ws.run("log", "approve", "--country", "BR")
    assert unguarded.exit_code == 1 and "only together with --all" in unguarded.stderr


def test_reject_needs_a_reason_and_keeps_it(seeded: tuple[Workspace, dict[str, int]]) -> None:
    ws, ids = seeded
    no_reason = ws.run("log", "reject", str(ids["offer_br"]))
    assert no_reason.exit_code == 1 and "needs a reason" in no_reason.stderr
    assert _state(ws, ids["offer_br"]).state == OutreachState.AWAITING_APPROVAL
    result = ws.run(
        "log", "reject", str(ids["offer_br"]), "--reason", "buyer chose to wait", "--by", "ana"
    )
    assert result.exit_code == 0
    row = _state(ws, ids["offer_br"])
    assert (row.state, row.decision_note, row.decided_by) == (
        "rejected",
        "buyer chose to wait",
        "ana",
    )


def test_mark_sent_for_manual_and_unknown_outcome_rows(
    seeded: tuple[Workspace, dict[str, int]],
) -> None:
    ws, ids = seeded
    assert ws.run("log", "mark-sent", str(ids["manual_fr"]), "--by", "li").exit_code == 0
    manual = _state(ws, ids["manual_fr"])
    assert manual.state == OutreachState.SENT and manual.sent_at is not None
    assert ws.run("log", "mark-sent", str(ids["planned_br"])).exit_code == 1
    assert ws.run("log", "retry", str(ids["unknown_us"])).exit_code == 0
    assert _state(ws, ids["unknown_us"]).state == OutreachState.APPROVED


def test_opt_out_stops_pending_buyer_messages(seeded: tuple[Workspace, dict[str, int]]) -> None:
    ws, ids = seeded
    result = ws.run("orders", "opt-out", "AE-1001", "--reason", "asked by phone", "--by", "li")
    assert result.exit_code == 0, result.output
    assert (
        "2 pending messages suppressed" in result.stdout
    )  # the offer and the planned customs note
    assert _state(ws, ids["offer_br"]).state == OutreachState.SUPPRESSED
    assert _state(ws, ids["planned_br"]).state == OutreachState.SUPPRESSED
    assert _state(ws, ids["sent_br"]).state == OutreachState.SENT  # history is never rewritten
    shown = json.loads(ws.run("orders", "show", "AE-1001", "--json").stdout)
    assert shown["order"]["state"] == OrderState.OPTED_OUT
    assert ws.run("orders", "opt-out", "NOPE").exit_code == 4


def test_story_in_time_order_and_as_a_safe_html_page(
    seeded: tuple[Workspace, dict[str, int]],
) -> None:
    ws, _ = seeded
    page = ws.root / "story.html"
    result = ws.run("orders", "story", "AE-1001", "--html", str(page))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line[:4].isdigit()]
    assert "QQ850419295BR: customs_hold" in lines[0]  # the tracking event came first
    assert [line[:16] for line in lines] == sorted(line[:16] for line in lines)
    html = page.read_text()
    assert "Fiscalização &lt;b&gt;aduaneira&lt;/b&gt;" in html  # carrier text escaped
    assert "<script" not in html and "http" not in html.split("<body>")[1]  # self-contained
    assert "refund_offer" in html and "CURITIBA - PR" in html
