"""The webhook channel against a real HTTP server on loopback that verifies the signature."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from messages.channels import (
    AmbiguousSendError,
    ManualChannel,
    OutgoingMessage,
    PermanentSendError,
    ReceiptStatus,
    RecordingChannel,
    RetryableSendError,
    WebhookChannel,
    make_message_id,
    verify_signature,
)
from messages.channels.base import Channel

SECRET = "whsec-0123456789abcdef"


@dataclass
class Peer:
    status: int = 200
    delay: float = 0.0
    drop: bool = False
    retry_after: str = ""
    requests: list[tuple[dict[str, str], bytes, bool]] = field(default_factory=list)
    port: int = 0


@pytest.fixture
def peer() -> Iterator[Peer]:
    state = Peer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k: v for k, v in self.headers.items()}
            ok = verify_signature(
                SECRET,
                self.headers["X-Parcelwatch-Timestamp"],
                body,
                self.headers["X-Parcelwatch-Signature"],
            )
            state.requests.append((headers, body, ok))
            if state.drop:
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            time.sleep(state.delay)
            self.send_response(state.status if ok else 401)
            if state.retry_after:
                self.send_header("Retry-After", state.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def message() -> OutgoingMessage:
    return OutgoingMessage(
        message_id=make_message_id("outreach-9", "shop.example"),
        to_address="buyer@example.com",
        to_name="Ольга Иванова",
        subject="Заказ 42: посылка в пути",
        text="Здравствуйте, Ольга Иванова!\n",
        html="<p>Здравствуйте!</p>\n",
        locale="ru",
        kind="tracking_update",
        order_id="42",
    )


def webhook(peer: Peer, **kwargs: object) -> WebhookChannel:
    return WebhookChannel(
        f"http://127.0.0.1:{peer.port}/hooks/T0KEN-in-path",
        SECRET,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_signed_json_is_accepted(peer: Peer) -> None:
    receipt = await webhook(peer).send(message())
    assert receipt.status is ReceiptStatus.SENT and receipt.detail == "HTTP 200"
    [(headers, body, signature_ok)] = peer.requests
    assert signature_ok
    assert headers["Idempotency-Key"] == "<parcelwatch.outreach-9@shop.example>"
    assert headers["X-Parcelwatch-Signature"].startswith("sha256=")
    doc = json.loads(body)
    assert doc["to"] == {"address": "buyer@example.com", "name": "Ольга Иванова"}
    assert doc["subject"] == "Заказ 42: посылка в пути"
    assert doc["kind"] == "tracking_update" and doc["order_id"] == "42" and doc["locale"] == "ru"


async def test_a_wrong_secret_is_rejected_by_the_receiver_and_is_permanent(peer: Peer) -> None:
    channel = WebhookChannel(f"http://127.0.0.1:{peer.port}/h", "not-the-secret")
    with pytest.raises(PermanentSendError):
        await channel.send(message())
    assert peer.requests[0][2] is False


def test_signature_covers_the_timestamp() -> None:
    body = b'{"a":1}'
    now = 1_800_000_000
    from messages.channels import sign

    header = sign(SECRET, str(now), body)
    assert verify_signature(SECRET, str(now), body, header, now=now)
    assert not verify_signature(SECRET, str(now + 1), body, header, now=now)
    assert not verify_signature(SECRET, str(now), body, header, now=now + 3600)  # replayed late
    assert not verify_signature(SECRET, str(now), body + b" ", header, now=now)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_throttling_and_server_errors_are_retryable(peer: Peer, status: int) -> None:
    peer.status = status
    peer.retry_after = "30"
    with pytest.raises(RetryableSendError) as err:
        await webhook(peer).send(message())
    assert err.value.retry_after == 30.0


@pytest.mark.parametrize("status", [400, 403, 404, 410, 422])
async def test_other_client_errors_are_permanent(peer: Peer, status: int) -> None:
    peer.status = status
    with pytest.raises(PermanentSendError):
        await webhook(peer).send(message())


async def test_receiver_down_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RetryableSendError):
        await WebhookChannel(f"http://127.0.0.1:{port}/h", SECRET).send(message())


async def test_no_answer_after_the_request_is_ambiguous(peer: Peer) -> None:
    peer.delay = 1.0
    with pytest.raises(AmbiguousSendError):
        await webhook(peer, timeout_seconds=0.3).send(message())
    assert len(peer.requests) == 1


async def test_connection_dropped_after_the_request_is_ambiguous(peer: Peer) -> None:
    peer.drop = True
    with pytest.raises(AmbiguousSendError):
        await webhook(peer).send(message())


async def test_secret_and_url_token_never_shown(
    peer: Peer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    peer.status = 500
    channel = webhook(peer)
    with pytest.raises(RetryableSendError) as err:
        await channel.send(message())
    for shown in (str(err.value), repr(channel), caplog.text):
        assert SECRET not in shown
        assert "T0KEN" not in shown


async def test_manual_channel_leaves_the_message_to_staff() -> None:
    channel = ManualChannel()
    assert isinstance(channel, Channel)
    receipt = await channel.send(message())
    assert receipt.status is ReceiptStatus.AWAITING_STAFF
    assert receipt.message_id == message().message_id


async def test_recording_channel_records_and_fails_on_demand() -> None:
    channel = RecordingChannel()
    assert isinstance(channel, Channel)
    channel.fail_next(RetryableSendError("421 try later"))
    with pytest.raises(RetryableSendError):
        await channel.send(message())
    receipt = await channel.send(message())
    assert receipt.status is ReceiptStatus.RECORDED
    assert channel.sent == [message()]


def test_message_id_must_be_a_message_id() -> None:
    with pytest.raises(ValueError):
        OutgoingMessage("no-brackets", "a@b.c", "", "s", "t", "h", "en")
    assert make_message_id("row 5/ü", "shop.example") == "<parcelwatch.row-5--@shop.example>"


def test_compose_takes_subject_parts_and_language_from_the_rendering() -> None:
    from datetime import date

    from messages.context import MessageContext
    from messages.render import render

    rendered = render(
        "extension",
        MessageContext(
            buyer_name="Jan", order_id="7", store_name="S", protection_until=date(2027, 1, 10)
        ),
        "pl",
    )
    out = OutgoingMessage.compose(
        rendered,
        message_id=make_message_id("7-extension", "s.example"),
        to_address="jan@example.pl",
        to_name="Jan",
        kind="extension",
        order_id="7",
    )
    assert (out.subject, out.text, out.html, out.locale) == (
        rendered.subject,
        rendered.text,
        rendered.html,
        "pl",
    )


def test_unsubscribe_target_falls_back_to_a_mailto() -> None:
    from messages.channels import unsubscribe_target

    assert unsubscribe_target("https://s.example/u", "help@s.example") == "https://s.example/u"
    assert unsubscribe_target("", "help@s.example") == "mailto:help@s.example?subject=unsubscribe"
    assert unsubscribe_target("", "") == ""
