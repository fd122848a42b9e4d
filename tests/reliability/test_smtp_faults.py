"""SMTP faults through the send job: retried with backoff, failed, or held for a person; never twice.

Buyer names full of Jinja, CRLF and HTML go through the same job to a real server unharmed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.models import OutreachState
from daemon.sandbox import SmtpSink
from daemon.send import BACKOFF
from tests.smtp_peers import AiosmtpdServer, Handler, RawServer
from tests.test_send_job import NOON_UTC, World


class Port:
    def __init__(self, port: int) -> None:
        self.port = port


def _world(tmp: Path, port: int, extra_replace: dict[str, str] | None = None) -> World:
    world = World(tmp, Port(port))  # type: ignore[arg-type]
    if extra_replace:
        text = (tmp / "config.toml").read_text()
        for old, new in extra_replace.items():
            text = text.replace(old, new)
        (tmp / "config.toml").write_text(text)
        from daemon.config import load_config

        world.config = load_config(tmp / "config.toml")
    return world


def test_server_down_retries_with_growing_backoff_then_fails(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    world = _world(tmp_path, port)
    row_id = world.plan("US-1", "tracking_update")
    waits = []
    for attempt in range(len(BACKOFF)):
        world.send()
        row = world.row(row_id)
        assert row.state == OutreachState.PLANNED and row.attempts == attempt + 1
        assert row.next_attempt_at is not None and "connect" in row.last_error
        waits.append(row.next_attempt_at - world.clock())
        world.send()  # too early: nothing happens
        assert world.row(row_id).attempts == attempt + 1
        world.clock.set(row.next_attempt_at)
    assert waits == list(BACKOFF)
    for _ in range(24):  # the last attempt may wait for the buyer's quiet hours to end
        world.send()
        row = world.row(row_id)
        if row.state != OutreachState.PLANNED:
            break
        world.clock.set(world.clock() + timedelta(hours=1))
    assert row.state == OutreachState.FAILED and "gave up after" in row.last_error


@pytest.mark.parametrize("reply", ["421 4.3.2 shutting down", "450 4.2.1 mailbox busy",
                                   "451 4.3.0 try later"])  # fmt: skip
def test_a_temporary_refusal_is_retried_and_then_sent_once(tmp_path: Path, reply: str) -> None:
    handler = Handler(reply_at={"DATA": reply})
    with AiosmtpdServer(handler) as server:
        world = _world(tmp_path, server.port)
        row_id = world.plan("BR-1", "tracking_update")
        world.send()
        row = world.row(row_id)
        assert row.state == OutreachState.PLANNED and reply.split()[0] in row.last_error
        assert row.next_attempt_at == NOON_UTC + BACKOFF[0]
        handler.reply_at.clear()
        world.clock.set(row.next_attempt_at)
        world.send()
        world.clock.set(world.clock() + BACKOFF[-1])
        world.send()
    assert world.row(row_id).state == OutreachState.SENT
    assert len(handler.received) == 1


@pytest.mark.parametrize("at,reply", [("RCPT", "550 5.1.1 no such user"),
                                      ("MAIL", "553 5.1.8 sender rejected"),
                                      ("DATA", "554 5.7.1 spam")])  # fmt: skip
def test_a_permanent_refusal_fails_at_once(tmp_path: Path, at: str, reply: str) -> None:
    handler = Handler(reply_at={at: reply})
    with AiosmtpdServer(handler) as server:
        world = _world(tmp_path, server.port)
        row_id = world.plan("BR-1", "tracking_update")
        world.send()
        world.clock.set(world.clock() + BACKOFF[-1])
        world.send()
    row = world.row(row_id)
    assert row.state == OutreachState.FAILED and reply.split()[0] in row.last_error
    assert row.attempts == 1 and handler.received == []


def _with_raw(behaviour: str, tmp_path: Path, body: Callable[[World], None]) -> RawServer:
    async def main() -> RawServer:
        async with RawServer(behaviour) as server:
            world = _world(tmp_path, server.port)
            await asyncio.to_thread(body, world)
            return server

    return asyncio.run(main())


@pytest.mark.parametrize("behaviour", ["drop_after_data", "garbage_after_data"])
def test_a_disconnect_after_the_content_is_held_for_review_never_resent(
    tmp_path: Path, behaviour: str
) -> None:
    ids: list[int] = []

    def body(world: World) -> None:
        ids.append(world.plan("US-1", "tracking_update"))
        world.send()
        for _ in range(3):
            world.clock.set(world.clock() + BACKOFF[-1])
            world.send()
        ids.append(world.row(ids[0]).state)  # type: ignore[arg-type]

    server = _with_raw(behaviour, tmp_path, body)
    assert ids[1] == OutreachState.NEEDS_REVIEW
    assert len(server.contents) == 1  # it reached the server once, and only once


def test_a_disconnect_before_the_content_is_retried(tmp_path: Path) -> None:
    states: list[Any] = []

    def body(world: World) -> None:
        row_id = world.plan("US-1", "tracking_update")
        world.send()
        row = world.row(row_id)
        states.extend([row.state, row.attempts, row.next_attempt_at])

    server = _with_raw("drop_at_mail", tmp_path, body)
    assert states == [OutreachState.PLANNED, 1, NOON_UTC + BACKOFF[0]]
    assert server.contents == []


def test_starttls_against_a_server_without_tls_never_sends_in_clear(tmp_path: Path) -> None:
    handler = Handler()
    with AiosmtpdServer(handler) as server:
        world = _world(tmp_path, server.port, {'tls = "none"': 'tls = "starttls"'})
        row_id = world.plan("US-1", "tracking_update")
        world.send()
    row = world.row(row_id)
    assert row.state in (OutreachState.PLANNED, OutreachState.FAILED), row
    assert row.state != OutreachState.SENT and "starttls" in row.last_error.lower()
    assert handler.received == []


NASTY = [
    "{{ config.__class__ }} {% for x in range(3) %}x{% endfor %}",
    "Ana\r\nBcc: victim@example.com",
    "<script>alert(1)</script> &amp; <b>bold</b>",
    "Ana\nSubject: injected",
]


@pytest.mark.parametrize("name", NASTY)
def test_hostile_buyer_names_arrive_as_text(tmp_path: Path, name: str) -> None:
    from sqlalchemy import update
    from sqlmodel import Session

    from daemon.models import Order

    sink = SmtpSink().start()
    try:
        world = World(tmp_path, sink)
        with Session(world.engine) as s:
            s.execute(update(Order).where(Order.order_id == "US-1").values(buyer_name=name))  # type: ignore[arg-type]
            s.commit()
        row_id = world.plan("US-1", "tracking_update")
        world.send()
        row = world.row(row_id)
        messages = sink.messages
    finally:
        sink.stop()
    assert row.state in (OutreachState.SENT, OutreachState.FAILED), row
    if row.state == OutreachState.FAILED:  # refused as unsendable is fine; smuggled is not
        assert messages == []
        return
    assert len(messages) == 1
    mail = messages[0]
    assert mail.get_all("Bcc") is None and mail["Subject"] == row.subject
    assert "injected" not in mail["Subject"] and "\n" not in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "<b>bold" not in html
    if "range(3)" in name:
        assert "range(3)" in text and "xxx" not in text  # never run as a template
