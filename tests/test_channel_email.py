"""The email channel against real SMTP peers on loopback: what arrives, and how each failure is
classified (retry, give up, or ambiguous: may have been delivered)."""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from messages.channels import (
    AmbiguousSendError,
    OutgoingMessage,
    PermanentSendError,
    ReceiptStatus,
    RetryableSendError,
    SmtpChannel,
    SmtpSettings,
    make_message_id,
)
from messages.context import MessageContext
from messages.kinds import Kind
from messages.render import PACKAGE_TEMPLATES, render
from tests.smtp_peers import (
    PASSWORD,
    USER,
    AiosmtpdServer,
    Handler,
    RawServer,
    free_port,
    self_signed_cert,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LOCALES = sorted(d.name for d in PACKAGE_TEMPLATES.iterdir() if d.is_dir() and d.name[0] != "_")


def outgoing(locale: str = "en", **changes: object) -> OutgoingMessage:
    ctx = MessageContext(
        buyer_name="Łucja Ñúñez",
        order_id="8123456789",
        store_name="Loja Bela",
        tracking_numbers=("QQ850419295BR",),
        next_update_on=datetime(2026, 12, 5).date(),
    )
    out = render(Kind.REASSURANCE, ctx, locale)
    fields: dict[str, object] = {
        "message_id": make_message_id("outreach-17", "lojabela.example"),
        "to_address": "lucja@buyer.example",
        "to_name": ctx.buyer_name,
        "subject": out.subject,
        "text": out.text,
        "html": out.html,
        "locale": locale,
        "kind": "reassurance",
        "order_id": ctx.order_id,
        "unsubscribe": "https://lojabela.example/unsubscribe?o=8123456789",
    }
    fields.update(changes)
    return OutgoingMessage(**fields)  # type: ignore[arg-type]


def channel(port: int, **settings: object) -> SmtpChannel:
    base: dict[str, object] = {"host": "127.0.0.1", "port": port, "timeout_seconds": 5.0,
                               "data_timeout_seconds": 5.0}  # fmt: skip
    base.update(settings)
    return SmtpChannel(
        SmtpSettings(**base),  # type: ignore[arg-type]
        from_address="ajuda@lojabela.example",
        from_name="Loja Bela",
        reply_to="respostas@lojabela.example",
        clock=lambda: NOW,
    )


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
def server(handler: Handler) -> Iterator[AiosmtpdServer]:
    with AiosmtpdServer(handler) as srv:
        yield srv


def parse(content: bytes) -> EmailMessage:
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


async def test_message_arrives_with_every_header_and_both_parts(
    server: AiosmtpdServer, handler: Handler
) -> None:
    message = outgoing()
    receipt = await channel(server.port).send(message)
    assert receipt.status is ReceiptStatus.SENT and receipt.detail.startswith("250")
    assert receipt.message_id == "<parcelwatch.outreach-17@lojabela.example>"
    [got] = handler.received
    assert got.mail_from == "ajuda@lojabela.example"
    assert got.rcpt_tos == ["lucja@buyer.example"]
    msg = parse(got.content)
    assert msg["Message-ID"] == "<parcelwatch.outreach-17@lojabela.example>"
    assert parsedate_to_datetime(msg["Date"]) == NOW
    assert msg["From"].addresses[0].display_name == "Loja Bela"
    assert msg["From"].addresses[0].addr_spec == "ajuda@lojabela.example"
    assert msg["To"].addresses[0].display_name == "Łucja Ñúñez"
    assert msg["Reply-To"].addresses[0].addr_spec == "respostas@lojabela.example"
    assert msg["List-Unsubscribe"] == "<https://lojabela.example/unsubscribe?o=8123456789>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Subject"] == message.subject
    assert msg["Content-Language"] == "en"
    assert msg.get_content_type() == "multipart/alternative"
    text, html = list(msg.iter_parts())
    assert text.get_content_type() == "text/plain" and text.get_content_charset() == "utf-8"
    assert html.get_content_type() == "text/html" and html.get_content_charset() == "utf-8"
    assert text.get_content().replace("\r\n", "\n") == message.text
    assert html.get_content().replace("\r\n", "\n") == message.html


async def test_mailto_unsubscribe_has_no_one_click_header(
    server: AiosmtpdServer, handler: Handler
) -> None:
    await channel(server.port).send(outgoing(unsubscribe="mailto:unsub@lojabela.example"))
    msg = parse(handler.received[0].content)
    assert msg["List-Unsubscribe"] == "<mailto:unsub@lojabela.example>"
    assert msg["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize("locale", LOCALES)
async def test_every_language_arrives_intact(
    server: AiosmtpdServer, handler: Handler, locale: str
) -> None:
    message = outgoing(locale)
    await channel(server.port).send(message)
    msg = parse(handler.received[0].content)
    assert msg["Content-Language"] == locale
    assert msg["Subject"] == message.subject
    text, html = list(msg.iter_parts())
    assert text.get_content().replace("\r\n", "\n") == message.text
    assert "Łucja Ñúñez" in text.get_content()
    assert f'lang="{locale}"' in html.get_content()


async def test_a_line_starting_with_a_dot_survives(
    server: AiosmtpdServer, handler: Handler
) -> None:
    message = outgoing(text="first\n.\n..two dots\n.end\n")
    await channel(server.port).send(message)
    text, _ = parse(handler.received[0].content).iter_parts()
    assert isinstance(text, EmailMessage)
    content = text.get_content()
    assert content.replace("\r\n", "\n") == "first\n.\n..two dots\n.end\n"


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Hello\r\nBcc: victim@example.com"},
        {"to_name": "Eve\r\nBcc: victim@example.com"},
        {"to_address": "eve@example.com\r\nBcc: victim@example.com"},
        {"unsubscribe": "https://x.example/\r\nBcc: victim@example.com"},
        {"headers": (("X-Order", "1\nBcc: victim@example.com"),)},
        {"to_address": "not an address"},
        {"to_address": "a@b@c"},
        {"to_address": "a@"},
    ],
)
async def test_header_injection_is_refused_before_connecting(
    server: AiosmtpdServer, handler: Handler, changes: dict[str, object]
) -> None:
    with pytest.raises(PermanentSendError):
        await channel(server.port).send(outgoing(**changes))
    assert handler.received == []


@pytest.mark.parametrize(
    ("step", "reply", "error"),
    [
        ("MAIL", "421 4.3.2 Service shutting down", RetryableSendError),
        ("RCPT", "450 4.2.1 Mailbox busy", RetryableSendError),
        ("DATA", "451 4.3.0 Local error in processing", RetryableSendError),
        ("RCPT", "550 5.1.1 No such user", PermanentSendError),
        ("MAIL", "553 5.1.8 Sender address rejected", PermanentSendError),
        ("DATA", "554 5.7.1 Message rejected as spam", PermanentSendError),
    ],
)
async def test_server_replies_are_classified(
    server: AiosmtpdServer,
    handler: Handler,
    step: str,
    reply: str,
    error: type[Exception],
) -> None:
    handler.reply_at[step] = reply
    with pytest.raises(error) as err:
        await channel(server.port).send(outgoing())
    assert reply.split()[0] in str(err.value)


async def test_server_down_is_retryable() -> None:
    with pytest.raises(RetryableSendError):
        await channel(free_port()).send(outgoing())


async def test_server_that_never_greets_times_out_retryably() -> None:
    async with RawServer("silent_greeting") as raw:
        with pytest.raises(RetryableSendError):
            await channel(raw.port, timeout_seconds=0.3).send(outgoing())


async def test_connection_dropped_before_data_is_retryable() -> None:
    async with RawServer("drop_at_mail") as raw:
        with pytest.raises(RetryableSendError):
            await channel(raw.port).send(outgoing())


async def test_connection_dropped_after_the_content_is_ambiguous() -> None:
    async with RawServer("drop_after_data") as raw:
        with pytest.raises(AmbiguousSendError) as err:
            await channel(raw.port).send(outgoing())
        assert len(raw.contents) == 1  # the server did get the whole message
    assert "may have been delivered" in str(err.value)


async def test_no_reply_after_the_content_is_ambiguous() -> None:
    async with RawServer("silent_after_data") as raw:
        with pytest.raises(AmbiguousSendError):
            await channel(raw.port, data_timeout_seconds=0.3).send(outgoing())


async def test_unreadable_reply_after_the_content_is_ambiguous() -> None:
    async with RawServer("garbage_after_data") as raw:
        with pytest.raises(AmbiguousSendError):
            await channel(raw.port, data_timeout_seconds=2).send(outgoing())


async def test_slow_reply_to_data_waits_for_the_long_timeout_not_the_command_timeout() -> None:
    async with RawServer("slow_final", delay=0.6) as raw:
        receipt = await channel(raw.port, timeout_seconds=0.2, data_timeout_seconds=5).send(
            outgoing()
        )
    assert receipt.status is ReceiptStatus.SENT


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command makes the test certificate")
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


def _server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certificate)
    return ctx


async def test_starttls_with_login_delivers(certificate: tuple[Path, Path]) -> None:
    handler = Handler()
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    with AiosmtpdServer(handler, tls=_server_tls(certificate)) as srv:
        receipt = await channel(
            srv.port, tls="starttls", username=USER, password=PASSWORD, tls_context=trust
        ).send(outgoing())
    assert receipt.status is ReceiptStatus.SENT
    assert len(handler.received) == 1


async def test_implicit_tls_delivers(certificate: tuple[Path, Path]) -> None:
    handler = Handler()
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    with AiosmtpdServer(handler, tls=_server_tls(certificate), implicit=True) as srv:
        receipt = await channel(srv.port, tls="implicit", tls_context=trust).send(outgoing())
    assert receipt.status is ReceiptStatus.SENT
    assert len(handler.received) == 1


async def test_starttls_refuses_an_untrusted_certificate(certificate: tuple[Path, Path]) -> None:
    handler = Handler()
    with AiosmtpdServer(handler, tls=_server_tls(certificate)) as srv:
        untrusting = ssl.create_default_context()  # the system CAs do not know our cert
        with pytest.raises(RetryableSendError):
            await channel(srv.port, tls="starttls", username=USER, password=PASSWORD,
                          tls_context=untrusting).send(outgoing())  # fmt: skip
    assert handler.received == []


async def test_wrong_password_is_permanent_and_never_shown(
    certificate: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    wrong = "WrongButSecret-9876"
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    with AiosmtpdServer(Handler(), tls=_server_tls(certificate)) as srv:
        ch = channel(srv.port, tls="starttls", username=USER, password=wrong, tls_context=trust)
        with pytest.raises(PermanentSendError) as err:
            await ch.send(outgoing())
    for shown in (str(err.value), repr(err.value), repr(ch), repr(ch.settings), caplog.text):
        assert wrong not in shown
    assert "535" in str(err.value)


async def test_stage_hook_names_every_crash_point_in_order(server: AiosmtpdServer) -> None:
    stages: list[str] = []
    ch = SmtpChannel(
        SmtpSettings(host="127.0.0.1", port=server.port),
        from_address="ajuda@lojabela.example",
        from_name="Loja Bela",
        stage_hook=stages.append,
    )
    await ch.send(outgoing())
    assert stages == ["connected", "content_next", "content_sent", "accepted"]


class Crash(Exception):
    pass


async def test_a_crash_after_the_content_leaves_the_message_delivered_but_unconfirmed(
    server: AiosmtpdServer, handler: Handler
) -> None:
    def crash_at(stage: str) -> None:
        if stage == "accepted":
            raise Crash(stage)

    ch = SmtpChannel(
        SmtpSettings(host="127.0.0.1", port=server.port),
        from_address="ajuda@lojabela.example",
        from_name="Loja Bela",
        stage_hook=crash_at,
    )
    with pytest.raises(Crash):
        await ch.send(outgoing())
    assert len(handler.received) == 1  # why the send job must not resend a row left in `sending`


async def test_non_ascii_mailbox_is_refused_permanently(
    server: AiosmtpdServer, handler: Handler
) -> None:
    # No SMTPUTF8 support yet: an internationalised local part cannot be sent as ASCII.
    with pytest.raises(PermanentSendError):
        await channel(server.port).send(outgoing(to_address="józef@example.pl"))
    assert handler.received == []


def test_wire_bytes_are_the_email_packages_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The content the session sends (`wire_bytes`, written directly) is byte for byte what the
    email package writes for `build_email`'s message: headers, folding, parts, line ends."""
    import random

    from messages.channels import smtp

    boundary = "=_0123456789abcdef01234567"
    monkeypatch.setattr(smtp, "_boundary", lambda: boundary)
    rnd = random.Random(7)
    alphabet = "abc xyz.\n\r\t=-Ñé—中ש ..\n.\nxxxxxxxxxx"

    def words(most: int, *, one_line: bool = False) -> str:
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, most)))
        return text.replace("\n", " ").replace("\r", " ") if one_line else text

    for i in range(300):
        message = OutgoingMessage(
            message_id=f"<parcelwatch.outreach-{i}@example.com>",
            to_address=rnd.choice(["buyer@example.com", "not an address", "b@ü.example"]),
            to_name=words(30, one_line=True),
            subject=words(120, one_line=rnd.random() < 0.9),
            text=words(3000),
            html=words(2000),
            locale=rnd.choice(["es", "", "pt-BR"]),
            unsubscribe=rnd.choice(["", "https://x.example/u", "mailto:r@example.com"]),
            headers=rnd.choice([(), (("X-Order-Id", words(100, one_line=True)),)]),
        )
        args = {
            "from_name": rnd.choice(["Store", "Tienda Ñandú"]),
            "from_address": "s@example.com",
            "reply_to": rnd.choice(["", "r@example.com"]),
            "now": datetime(2026, 11, 10, 12, tzinfo=UTC),
        }
        try:
            expected: bytes | str = smtp.email_bytes(smtp.build_email(message, **args))
        except PermanentSendError as exc:
            expected = exc.reason
        try:
            written: bytes | str = smtp.wire_bytes(message, boundary=boundary, **args)
        except PermanentSendError as exc:
            written = exc.reason
        assert written == expected
