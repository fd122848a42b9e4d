"""The send job against a real SMTP server on loopback: exactly once, approvals, holds, quiet hours."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from sqlmodel import Session

from daemon.clock import VirtualClock
from daemon.config import Config, load_config
from daemon.db import make_engine, upgrade
from daemon.importer import parse_file
from daemon.models import Order, Outreach, OutreachState
from daemon.order_store import import_rows
from daemon.review import approve
from daemon.sandbox import SmtpSink
from daemon.send import BUYER_GAP, Sender
from daemon.wiring import build_channels
from messages.remedies import Remedies
from tests.conftest import SHIPPED_CONFIG

NOON_UTC = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)  # 12:00 in Sao Paulo, 18:00 in Moscow

ORDERS = """order_id,buyer_name,email,locale,country,ship_date,tracking_numbers
BR-1,Ana {{ 7*7 }} <b>Souza</b>,ana@example.com,pt-BR,BR,2026-10-01,QQ850419295BR
PT-1,João,joao@example.pt,pt-PT,PT,2026-10-01,RR123456785CN
US-1,Jo,jo@example.com,en-US,US,2026-10-01,LB528961554HK
"""


class World:
    def __init__(self, tmp: Path, sink: SmtpSink, extra: str = "", url: str = "") -> None:
        self.sink = sink
        url = url or f"sqlite:///{tmp / 'pw.db'}"
        text = SHIPPED_CONFIG.read_text().replace("sqlite:///parcelwatch.db", url)
        text = text.replace("port = 25", f"port = {sink.port}").replace(
            "max_per_minute = 120", "max_per_minute = 60000"
        )
        config_path = tmp / "config.toml"
        config_path.write_text(text + extra)
        self.config: Config = load_config(config_path)
        self.engine = make_engine(url)
        upgrade(self.engine)
        orders = tmp / "orders.csv"
        orders.write_text(ORDERS)
        import_rows(self.engine, parse_file(orders).rows, NOON_UTC)
        self.clock = VirtualClock(NOON_UTC)

    def sender(self, **kw: object) -> Sender:
        return Sender(self.engine, self.config, self.clock, build_channels(self.config, self.clock),
                      owner="test", **kw)  # type: ignore[arg-type]  # fmt: skip

    def plan(
        self, order_id: str, kind: str, state: str = OutreachState.PLANNED, **values: object
    ) -> int:
        with Session(self.engine) as s:
            order = s.execute(select(Order).where(Order.order_id == order_id)).scalar_one()  # type: ignore[arg-type]
            columns = {"order_pk": order.id, "kind": kind, "trigger": "stage", "state": state,
                       "channel": "email", "audience": "buyer", "reason": "test", "due_at": NOON_UTC,
                       "created_at": NOON_UTC, "updated_at": NOON_UTC, **values}  # fmt: skip
            row = s.execute(insert(Outreach).values(**columns).returning(Outreach.id)).scalar_one()  # type: ignore[arg-type]
            s.commit()
        return int(row)

    def row(self, row_id: int) -> Outreach:
        with Session(self.engine) as s:
            found = s.get(Outreach, row_id)
            assert found is not None
            return found

    def send(self, sender: Sender | None = None) -> object:
        return asyncio.run((sender or self.sender()).run_once())


@pytest.fixture(params=["sqlite", "postgresql"])
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    """The store on a SQLite file, and again on PostgreSQL: the send job's fenced writes are
    driver SQL of their own, not only what SQLAlchemy renders per dialect."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else ""
    sink = SmtpSink().start()
    world = None
    try:
        world = World(tmp_path, sink, url=url)
        yield world
    finally:
        sink.stop()
        if world is not None:
            world.engine.dispose()  # before the schema is dropped


def test_sent_once_with_headers_and_the_buyers_language(world: World) -> None:
    row_id = world.plan("BR-1", "tracking_update")
    world.send()
    world.send()  # a second pass finds nothing to do
    assert len(world.sink.messages) == 1
    mail = world.sink.messages[0]
    row = world.row(row_id)
    assert row.state == OutreachState.SENT and row.sent_at == NOON_UTC
    assert mail["Message-ID"] == row.message_id == f"<parcelwatch.outreach-{row_id}@example.com>"
    assert mail["List-Unsubscribe"] and mail["Date"] and "Example Store" in mail["From"]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Olá" in text and "BR-1" in text and "QQ850419295BR" in text
    assert (
        "{{ 7*7 }}" in text and "49" not in text.split("BR-1")[0]
    )  # buyer text is never a template
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "&lt;b&gt;Souza&lt;/b&gt;" in html and "<b>Souza</b>" not in html
    assert row.locale == "pt-BR" and row.subject == mail["Subject"]


def test_refund_offers_wait_for_approval(world: World) -> None:
    row_id = world.plan("US-1", "refund_offer", OutreachState.AWAITING_APPROVAL,
                        needs_approval=True, remedies=Remedies(reship=True).to_json())  # fmt: skip
    world.send()
    assert world.sink.messages == [] and world.row(row_id).state == OutreachState.AWAITING_APPROVAL
    approve(world.engine, [row_id], "lead", NOON_UTC)
    world.send()
    assert len(world.sink.messages) == 1 and world.row(row_id).state == OutreachState.SENT


def test_a_crash_between_sending_and_sent_is_held_never_resent(world: World) -> None:
    row_id = world.plan("US-1", "tracking_update")

    def die(point: str) -> None:
        if point == "after_channel_returned":
            raise SystemExit("killed")  # the server accepted it; we never recorded 'sent'

    with pytest.raises(SystemExit):
        world.send(world.sender(crash=die))
    assert len(world.sink.messages) == 1
    assert world.row(row_id).state == OutreachState.SENDING
    world.clock.advance(timedelta(minutes=10))  # the dead daemon's lease runs out
    world.send()
    row = world.row(row_id)
    assert row.state == OutreachState.NEEDS_REVIEW and "may or may not" in row.last_error
    world.send()
    assert len(world.sink.messages) == 1  # never sent twice


def test_missing_language_holds_the_message_instead_of_falling_back(world: World) -> None:
    row_id = world.plan("PT-1", "tracking_update")
    world.send()
    row = world.row(row_id)
    assert row.state == OutreachState.FAILED and "held for staff" in row.last_error
    assert "pt-PT" in row.last_error
    assert world.sink.messages == []


def test_fallback_when_configured(tmp_path: Path) -> None:
    sink = SmtpSink().start()
    try:
        w = World(tmp_path, sink)
        text = (
            (tmp_path / "config.toml")
            .read_text()
            .replace('missing_template = "hold"', 'missing_template = "fallback"')
        )
        (tmp_path / "config.toml").write_text(text)
        w.config = load_config(tmp_path / "config.toml")
        row_id = w.plan("PT-1", "tracking_update")
        w.send()
        assert w.row(row_id).state == OutreachState.SENT
    finally:
        sink.stop()


def test_a_sellers_template_folder_overrides_the_shipped_one(tmp_path: Path) -> None:
    folder = tmp_path / "mytemplates" / "en"
    folder.mkdir(parents=True)
    shipped = (
        SHIPPED_CONFIG.parent / "messages" / "templates" / "en" / "tracking_update.j2"
    ).read_text()
    (folder / "tracking_update.j2").write_text(
        shipped.replace("{% block body %}", "{% block body %}Howdy from our own template!\n", 1)
    )
    sink = SmtpSink().start()
    try:
        w = World(tmp_path, sink)
        text = (
            (tmp_path / "config.toml")
            .read_text()
            .replace('template_dir = ""', f'template_dir = "{tmp_path / "mytemplates"}"')
        )
        (tmp_path / "config.toml").write_text(text)
        w.config = load_config(tmp_path / "config.toml")
        from daemon.wiring import build_runtime

        sender = build_runtime(w.config, w.engine, w.clock, owner="t").sender
        w.plan("US-1", "tracking_update")
        w.send(sender)
        assert "Howdy from our own template!" in sink.messages[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    finally:
        sink.stop()


def test_quiet_hours_defer_to_the_buyers_morning(world: World) -> None:
    world.clock.set(datetime(2026, 11, 11, 2, 0, tzinfo=UTC))  # 23:00 in Sao Paulo
    row_id = world.plan(
        "BR-1", "reassurance", next_update_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    )
    world.send()
    row = world.row(row_id)
    assert world.sink.messages == [] and row.state == OutreachState.PLANNED
    assert row.next_attempt_at == datetime(2026, 11, 11, 11, 0, tzinfo=UTC)  # 08:00 local
    world.clock.set(datetime(2026, 11, 11, 11, 0, tzinfo=UTC))
    world.send()
    assert world.row(row_id).state == OutreachState.SENT


def test_two_messages_for_one_buyer_never_leave_together(world: World) -> None:
    first = world.plan("US-1", "tracking_not_found", next_update_at=NOON_UTC + timedelta(days=9))
    second = world.plan("US-1", "delivered", trigger="order")
    world.send()
    assert len(world.sink.messages) == 1
    assert world.row(first).state == OutreachState.SENT
    waiting = world.row(second)
    assert waiting.state == OutreachState.PLANNED
    assert waiting.next_attempt_at == NOON_UTC + BUYER_GAP
    world.clock.advance(BUYER_GAP)
    world.send()
    assert len(world.sink.messages) == 2 and world.row(second).state == OutreachState.SENT


def test_an_opted_out_order_gets_nothing(world: World) -> None:
    row_id = world.plan("US-1", "reassurance")
    with Session(world.engine) as s:
        s.execute(update(Order).where(Order.order_id == "US-1").values(state="opted_out"))  # type: ignore[arg-type]
        s.commit()
    world.send()
    assert world.row(row_id).state == OutreachState.SUPPRESSED and world.sink.messages == []


def test_temporary_smtp_failure_backs_off_and_permanent_fails(world: World) -> None:
    world.sink.handler.reply = "451 4.3.0 try later"  # type: ignore[attr-defined]
    first = world.plan("US-1", "tracking_update")
    world.send()
    row = world.row(first)
    assert row.state == OutreachState.PLANNED and row.attempts == 1
    assert row.next_attempt_at == NOON_UTC + timedelta(minutes=1) and "451" in row.last_error
    world.sink.handler.reply = "550 5.1.1 no such user"  # type: ignore[attr-defined]
    world.clock.advance(timedelta(minutes=2))
    world.send()
    assert world.row(first).state == OutreachState.FAILED and "550" in world.row(first).last_error


def test_webhook_channel_end_to_end_with_a_verified_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from messages.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

    received: list[tuple[bool, dict[str, object]]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = verify_signature("hook-secret-123", self.headers[TIMESTAMP_HEADER], body,
                                  self.headers[SIGNATURE_HEADER])  # fmt: skip
            received.append((ok, json.loads(body)))
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sink = SmtpSink().start()
    try:
        monkeypatch.setenv("PARCELWATCH_WEBHOOK_SECRET", "hook-secret-123")
        w = World(tmp_path, sink)
        text = (
            (tmp_path / "config.toml")
            .read_text()
            .replace(
                '[webhook]\nurl = ""',
                f'[webhook]\nurl = "http://127.0.0.1:{server.server_port}/hook"',
            )
        )
        (tmp_path / "config.toml").write_text(text)
        w.config = load_config(tmp_path / "config.toml")
        row_id = w.plan("US-1", "tracking_update")
        with Session(w.engine) as s:
            s.execute(update(Outreach).where(Outreach.id == row_id).values(channel="webhook"))  # type: ignore[arg-type]
            s.commit()
        w.send()
        assert w.row(row_id).state == OutreachState.SENT
        assert len(received) == 1 and received[0][0], "signature verified by the receiver"
        assert received[0][1]["order_id"] == "US-1" and sink.messages == []
    finally:
        sink.stop()
        server.shutdown()
