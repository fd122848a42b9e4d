"""The questions every channel must answer the same way (django-anymail style): it is a Channel,
it returns a receipt for the message it was given, and it names itself in the receipt."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from messages.channels import (
    Channel,
    ManualChannel,
    OutgoingMessage,
    RecordingChannel,
    SmtpChannel,
    SmtpSettings,
    WebhookChannel,
    make_message_id,
)
from tests.smtp_peers import AiosmtpdServer, Handler


def message() -> OutgoingMessage:
    return OutgoingMessage(
        message_id=make_message_id("contract-1", "shop.example"),
        to_address="buyer@example.com",
        to_name="Buyer",
        subject="Order 1: on its way",
        text="Hi Buyer, order 1.\n",
        html="<p>Hi Buyer, order 1.</p>\n",
        locale="en",
        kind="tracking_update",
        order_id="1",
    )


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(params=["email", "webhook", "manual", "recording"])
async def channel(request: pytest.FixtureRequest) -> AsyncIterator[Channel]:
    kind: str = request.param
    if kind == "email":
        with AiosmtpdServer(Handler()) as srv:
            yield SmtpChannel(
                SmtpSettings(host="127.0.0.1", port=srv.port),
                from_address="shop@shop.example",
                from_name="Shop",
            )
    elif kind == "webhook":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        yield WebhookChannel(f"http://127.0.0.1:{server.server_address[1]}/h", "secret")
        server.shutdown()
        server.server_close()
    else:
        factories: dict[str, Callable[[], Channel]] = {
            "manual": ManualChannel,
            "recording": RecordingChannel,
        }
        yield factories[kind]()


async def test_every_channel_keeps_the_contract(channel: Channel) -> None:
    assert isinstance(channel, Channel)
    receipt = await channel.send(message())
    assert receipt.message_id == message().message_id
    assert receipt.channel == channel.name
    assert receipt.detail
