"""`parcelwatch log show ID` prints what staff decide on, and the very message the send job then
sends: the CLI through typer's runner, a real SQLite file, and the send job over SMTP on loopback
with the same config."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from daemon.config import load_config
from daemon.db import make_engine
from daemon.models import Order, Outreach, OutreachState
from daemon.sandbox import SmtpSink
from daemon.wiring import build_runtime
from tests.conftest import Workspace
from tests.test_send_from_row import offer_templates

ORDERS = """order_id,source,buyer_name,email,locale,country,ship_date,tracking_numbers,order_value,currency
AE-1,aliexpress,Ana Souza,ana@example.com,pt-BR,BR,2026-10-01,QQ850419295BR,"129,90",BRL
SH-1,shopify,Jo [b]Smith[/b] :smile:,jo@example.com,en-US,US,2026-10-01,LB528961554HK,25.00,USD
"""

SNAPSHOT = json.dumps(
    {"QQ850419295BR": {"status": "customs_hold", "events": 4,
                       "last_event": {"at": "2026-11-02T10:00:00+00:00", "status": "customs_hold",
                                      "description": "Fiscalização [red]aduaneira[/red]",
                                      "location": "CURITIBA - PR"}}},
    ensure_ascii=False,
)  # fmt: skip


class Desk:
    """A workspace whose config sends to an SMTP sink on loopback, at any hour (no quiet hours:
    the send job runs on the real clock here, as `log show` does)."""

    def __init__(self, ws: Workspace, sink: SmtpSink) -> None:
        self.ws, self.sink = ws, sink
        folder = offer_templates(ws.root / "tpl")
        text = (
            ws.shipped_config_text()
            .replace("port = 25", f"port = {sink.port}")
            .replace("max_per_minute = 120", "max_per_minute = 60000")
            .replace("start = 21:00:00, end = 08:00:00", "start = 00:00:00, end = 00:00:00")
            .replace('template_dir = ""', f'template_dir = "{folder}"')
        )
        ws.write_config(text)
        assert ws.run("db", "upgrade").exit_code == 0
        orders = ws.root / "orders.csv"
        orders.write_text(ORDERS)
        result = ws.run("orders", "import", str(orders))
        assert result.exit_code == 0, result.output
        self.engine = make_engine(ws.database_url)

    def plan(self, order_id: str, kind: str, state: str = OutreachState.PLANNED, **values: object) -> int:  # fmt: skip
        now = datetime.now(UTC)
        with Session(self.engine) as s:
            order = s.exec(select(Order).where(Order.order_id == order_id)).one()
            assert order.id is not None
            columns = {"trigger": "stage", "channel": "email", "reason": f"{kind}: test",
                       "due_at": now - timedelta(minutes=1), "created_at": now, "updated_at": now,
                       "needs_approval": kind == "refund_offer", **values}  # fmt: skip
            row = Outreach(order_pk=order.id, kind=kind, state=state, **columns)  # type: ignore[arg-type]
            s.add(row)
            s.commit()
            assert row.id is not None
            return row.id

    def show(self, row_id: int) -> str:
        result = self.ws.run("log", "show", str(row_id))
        assert result.exit_code == 0, result.output
        return result.stdout

    def send(self) -> None:
        config = load_config(self.ws.config)
        runtime = build_runtime(config, self.engine, lambda: datetime.now(UTC), owner="test")
        runtime.sender.sleep = _no_sleep
        asyncio.run(runtime.sender.run_once())


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
def desk(workspace: Workspace) -> Iterator[Desk]:
    sink = SmtpSink().start()
    desk = None
    try:
        desk = Desk(workspace, sink)
        yield desk
    finally:
        sink.stop()
        if desk is not None:
            desk.engine.dispose()


def message_of(shown: str) -> tuple[str, str, str]:
    """(header line, subject, body) of the message part of `log show`."""
    _, _, message = shown.partition("\n--- ")
    assert message, shown
    header, _, rest = message.partition("\n")
    subject_line, _, body = rest.partition("\n\n")
    assert subject_line.startswith("Subject: "), shown
    return header, subject_line.removeprefix("Subject: "), body.rstrip("\n")


def plain(mail: EmailMessage) -> str:
    """The text part as the buyer reads it (SMTP carries its lines with CRLF)."""
    text: str = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return text.replace("\r\n", "\n").rstrip("\n")


def test_show_prints_the_subject_and_body_the_send_job_then_sends(desk: Desk) -> None:
    next_update = datetime.now(UTC) + timedelta(days=9)
    row_id = desk.plan("AE-1", "reassurance", next_update_at=next_update, situation="on_its_way",
                       expected_by=datetime.now(UTC) + timedelta(days=30),
                       tracking_snapshot=SNAPSHOT)  # fmt: skip
    shown = desk.show(row_id)
    header, subject, body = message_of(shown)
    assert "(pt-BR), as it would be sent now" in header
    day = next_update.astimezone(ZoneInfo("America/Sao_Paulo")).date().isoformat()  # BR window
    assert f"next update {day}" in shown and "situation: on_its_way" in shown
    assert "reason: reassurance: test" in shown and "paid 129.90 BRL" in shown
    # The carrier's words are data: printed as they are, never as markup.
    assert "QQ850419295BR: customs_hold, 4 events" in shown
    assert "Fiscalização [red]aduaneira[/red] (CURITIBA - PR)" in shown

    desk.send()
    [mail] = desk.sink.messages
    assert mail["Subject"] == subject
    assert plain(mail) == body
    after = desk.show(row_id)
    assert "--- the message as sent (pt-BR) ---" in after
    assert message_of(after)[1:] == (subject, body)


def test_a_refund_offer_is_shown_composed_exactly_as_it_goes_out(desk: Desk) -> None:
    row_id = desk.plan("SH-1", "refund_offer", OutreachState.AWAITING_APPROVAL,
                       situation="on_its_way")  # fmt: skip
    before = desk.show(row_id)
    assert "remedies: not composed yet" in before
    assert f"parcelwatch log compose {row_id} --full-refund --reship" in before
    assert "Subject:" not in before
    assert "buyer: Jo [b]Smith[/b] :smile: <jo@example.com>" in before  # data, not markup

    composed = desk.ws.run("log", "compose", str(row_id), "--full-refund", "--reship")
    assert composed.exit_code == 0, composed.output
    shown = desk.show(row_id)
    assert "remedies: full refund 25.00 USD, reship" in shown
    header, subject, body = message_of(shown)
    assert "(en), as it would be sent now" in header  # the seller's English template
    assert "We offer: full refund 25.00 USD, reship." in body and "$25.00" in body
    assert "Hi Jo [b]Smith[/b] :smile:," in body

    approved = desk.ws.run("log", "approve", str(row_id), "--by", "lead")
    assert approved.exit_code == 0, approved.output
    desk.send()
    [mail] = desk.sink.messages
    assert (mail["Subject"], plain(mail)) == (subject, body)


def test_show_says_when_a_row_would_be_held_and_why(desk: Desk) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    row_id = desk.plan("SH-1", "reassurance", next_update_at=yesterday)
    shown = desk.show(row_id)
    assert "It would not be sent now: held for staff: the date it promises (" in shown
    assert "Subject:" not in shown
    desk.send()
    assert desk.sink.messages == []


def test_show_an_unknown_entry(desk: Desk) -> None:
    result = desk.ws.run("log", "show", "99999")
    assert result.exit_code == 4 and "no log entry 99999" in result.stderr
