"""One SMTP connection for a run of messages: fewer connections, the same messages, each once, and
the same error split; a connection the server closed is replaced without sending anything twice."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlmodel import Session

from daemon.models import Order, Outreach, OutreachState
from messages.channels import (
    AmbiguousSendError,
    OutgoingMessage,
    PermanentSendError,
    SmtpChannel,
    SmtpSettings,
    make_message_id,
)
from tests.smtp_peers import AiosmtpdServer, Handler, RawServer
from tests.test_send_job import NOON_UTC, World


def message(n: int, to: str = "buyer@example.com") -> OutgoingMessage:
    return OutgoingMessage(
        message_id=make_message_id(f"outreach-{n}", "shop.example"),
        to_address=to,
        to_name=f"Buyer {n}",
        subject=f"Order {n}: on its way",
        text=f"Hi, order {n}.\n",
        html=f"<p>Hi, order {n}.</p>\n",
        locale="en",
    )


def channel(port: int, per_connection: int = 100) -> SmtpChannel:
    settings = SmtpSettings(host="127.0.0.1", port=port, timeout_seconds=5.0,
                            data_timeout_seconds=5.0, messages_per_connection=per_connection)  # fmt: skip
    return SmtpChannel(settings, from_address="shop@shop.example", from_name="Shop")


def ids(contents: list[bytes]) -> Counter[str]:
    return Counter(
        str(email.message_from_bytes(c, policy=email.policy.default)["Message-ID"])
        for c in contents
    )


async def test_a_session_sends_many_messages_over_one_connection() -> None:
    handler = Handler()
    with AiosmtpdServer(handler) as server:
        async with channel(server.port).session() as session:
            for n in range(5):
                await session.send(message(n))
    assert len(handler.received) == 5
    assert len({r.peer for r in handler.received}) == 1 == session.connections
    assert ids([r.content for r in handler.received]) == Counter(
        make_message_id(f"outreach-{n}", "shop.example") for n in range(5)
    )


async def test_a_new_connection_after_messages_per_connection() -> None:
    handler = Handler()
    with AiosmtpdServer(handler) as server:
        async with channel(server.port, per_connection=3).session() as session:
            for n in range(7):
                await session.send(message(n))
    assert len(handler.received) == 7
    assert len({r.peer for r in handler.received}) == 3 == session.connections


async def test_a_refused_recipient_does_not_end_the_session() -> None:
    handler = Handler(refuse_rcpt={"gone@example.com": "550 5.1.1 no such user"})
    with AiosmtpdServer(handler) as server:
        async with channel(server.port).session() as session:
            await session.send(message(1))
            with pytest.raises(PermanentSendError, match="550"):
                await session.send(message(2, to="gone@example.com"))
            await session.send(message(3))  # after RSET, on the same connection
    assert [r.rcpt_tos for r in handler.received] == [["buyer@example.com"]] * 2
    assert session.connections == 1


@pytest.mark.parametrize("behaviour", ["close_after_first", "421_after_first"])
async def test_a_connection_the_server_closed_is_replaced_and_nothing_is_sent_twice(
    behaviour: str,
) -> None:
    async with RawServer(behaviour) as server, channel(server.port).session() as session:
        for n in range(4):
            await session.send(message(n))
    assert server.connections == 4 == session.connections  # one message each, as the server wants
    assert ids(server.contents) == Counter(
        make_message_id(f"outreach-{n}", "shop.example") for n in range(4)
    )


async def test_after_an_ambiguous_send_the_next_message_uses_a_new_connection() -> None:
    async with RawServer("drop_after_data") as server, channel(server.port).session() as session:
        for n in range(2):
            with pytest.raises(AmbiguousSendError):  # never retried on another connection
                await session.send(message(n))
    assert server.connections == 2 and len(server.contents) == 2
    assert max(ids(server.contents).values()) == 1


async def test_a_prepared_content_is_only_used_for_its_own_message() -> None:
    handler = Handler()
    with AiosmtpdServer(handler) as server:
        async with channel(server.port).session() as session:
            session.prepare(message(1))
            await session.send(message(2))  # another message: built afresh
            session.prepare(message(3))
            await session.send(message(3))
    assert list(ids([r.content for r in handler.received])) == [
        make_message_id(f"outreach-{n}", "shop.example") for n in (2, 3)
    ]


def _plan_rows(world: World, count: int) -> list[int]:
    """`count` due buyer emails, one per order (two emails to one buyer never leave together),
    the orders copied from the two that have templates."""
    rows = []
    with Session(world.engine) as s:
        for n in range(count):
            base = s.execute(select(Order).where(Order.order_id == ("BR-1", "US-1")[n % 2])).scalar_one()  # type: ignore[arg-type]  # fmt: skip
            copy = base.model_dump(exclude={"id"}) | {"order_id": f"{base.order_id}-{n}"}
            order_pk = s.execute(insert(Order).values(**copy).returning(Order.id)).scalar_one()  # type: ignore[arg-type]
            row = s.execute(insert(Outreach).values(order_pk=order_pk, kind="tracking_update",
                            trigger=f"run-{n}", state=OutreachState.PLANNED, channel="email",
                            audience="buyer", reason="test", due_at=NOON_UTC, created_at=NOON_UTC,
                            updated_at=NOON_UTC).returning(Outreach.id)).scalar_one()  # type: ignore[arg-type]  # fmt: skip
            rows.append(int(row))
        s.commit()
    return rows


def test_the_send_job_sends_a_batch_over_one_connection(tmp_path: Path) -> None:
    handler = Handler()
    with AiosmtpdServer(handler) as server:
        world = World(tmp_path, server)  # type: ignore[arg-type]
        rows = _plan_rows(world, 6)
        report = world.send()
    assert report.sent == 6  # type: ignore[attr-defined]
    assert all(world.row(r).state == OutreachState.SENT for r in rows)
    assert len(handler.received) == 6 and len({r.peer for r in handler.received}) == 1
    assert sorted(ids([r.content for r in handler.received])) == sorted(
        world.row(r).message_id for r in rows
    )


def test_the_send_job_reconnects_when_the_server_drops_it_and_sends_each_once(
    tmp_path: Path,
) -> None:
    async def main() -> tuple[RawServer, list[int], World]:
        async with RawServer("close_after_first") as server:
            world = World(tmp_path, server)  # type: ignore[arg-type]
            rows = _plan_rows(world, 4)
            await asyncio.to_thread(world.send)
            return server, rows, world

    server, rows, world = asyncio.run(main())
    assert [world.row(r).state for r in rows] == [OutreachState.SENT] * 4
    assert server.connections == 4
    assert sorted(ids(server.contents)) == sorted(world.row(r).message_id for r in rows)


def test_an_order_closed_while_its_batch_is_sent_gets_no_further_message(tmp_path: Path) -> None:
    """The batch's orders are read once; the `sending` update checks the order is still open."""
    from sqlalchemy import update

    handler = Handler()
    with AiosmtpdServer(handler) as server:
        world = World(tmp_path, server)  # type: ignore[arg-type]
        rows = _plan_rows(world, 4)  # BR-1-0, US-1-1, BR-1-2, US-1-3, sent in that order

        async def close_the_order(_: float) -> None:  # after the first email, BR-1-2 is disputed
            with Session(world.engine) as s:
                s.execute(update(Order).where(Order.order_id == "BR-1-2").values(state="disputed"))  # type: ignore[arg-type]
                s.commit()

        world.send(world.sender(sleep=close_the_order))
    assert world.row(rows[0]).state == OutreachState.SENT
    closed = world.row(rows[2])
    assert closed.state == OutreachState.SUPPRESSED and "disputed" in closed.last_error
    assert len(handler.received) == 3
