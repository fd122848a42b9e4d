"""Email over SMTP with aiosmtplib, speaking the conversation step by step so every failure is known
to have happened before or after the message content was sent.

Why step by step: between the final "." of DATA and the server's reply the outcome is unknowable
(RFC 1047). A failure before that point is safe to retry; a lost connection or a timeout after it is
an AmbiguousSendError, and the caller must not resend blindly. Commands use a short timeout; the
reply to the end of DATA gets a long one (RFC 5321 §4.5.3.2.6 asks for 10 minutes), because a short
one turns a slow server into an ambiguous send.

A send job with many messages opens a `session()`: one connection carries a run of messages
(MAIL, RCPT, DATA each), as every SMTP client of a mailing list does, instead of a new TCP
connection, greeting and EHLO per message. A reused connection that turns out to be closed before
the content went out is replaced once, transparently: nothing was delivered on it.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr
from functools import lru_cache
from typing import Literal

import aiosmtplib
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from messages.channels.base import (
    AmbiguousSendError,
    OutgoingMessage,
    PermanentSendError,
    Receipt,
    ReceiptStatus,
    RetryableSendError,
    Secret,
)

TlsMode = Literal["none", "starttls", "implicit"]


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the relay. The password is passed in (read from the environment by the caller)
    and is kept in a Secret, so it never shows in a repr or an error."""

    host: str
    port: int
    tls: TlsMode = "none"
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    timeout_seconds: float = 30.0  # connect and every command
    data_timeout_seconds: float = 600.0  # the reply to the end of DATA
    tls_context: ssl.SSLContext | None = None  # None: the system's trusted CAs
    local_hostname: str | None = None
    # A session opens a new connection after this many messages: some relays cap messages per
    # connection, and a new connection every so often costs little.
    messages_per_connection: int = 100

    def __post_init__(self) -> None:
        if isinstance(self.password, str):  # accept a plain string, keep it wrapped
            object.__setattr__(self, "password", Secret(self.password))
        if self.tls not in ("none", "starttls", "implicit"):
            raise ValueError(f"tls must be none, starttls or implicit, not {self.tls!r}")
        if self.messages_per_connection < 1:
            raise ValueError("messages_per_connection must be at least 1")


_LONGEST_WORD = 60  # longer ones go out as encoded words, which fold anywhere
_ENCODED_CHUNK = 45  # UTF-8 bytes per encoded word: "=?utf-8?b?" + 60 base64 + "?=" = 72 columns


def _no_line_breaks(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise PermanentSendError(f"header {name} contains a line break; refusing to build it")
    return value


def _plain(value: str) -> bool:
    """True when a header value can go out as written: ASCII, nothing a reader would decode as an
    RFC 2047 encoded word (buyer data must stay data), and no word too long to fold at 78."""
    return (
        value.isascii()
        and "=?" not in value
        and all(len(word) <= _LONGEST_WORD for word in value.split())
    )


class _Encoded(str):
    """A header value already encoded and folded here (base64 encoded words, ASCII only)."""


def _encoded_words(text: str) -> _Encoded:
    """RFC 2047 base64 encoded words, one per folded line, never splitting a character.

    Why not `email.header.Header`: it finds each split by re-encoding the growing line, character
    by character, which costs more than the rest of the message together."""
    chunks: list[bytes] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _ENCODED_CHUNK:
            chunks.append(chunk)
            chunk = b""
        chunk += data
    chunks.append(chunk)
    words = (f"=?utf-8?b?{base64.b64encode(c).decode('ascii')}?=" for c in chunks)
    return _Encoded("\r\n ".join(words))


def _text_header(value: str) -> str:
    return value if _plain(value) else _encoded_words(value)


def _mailbox(header: str, name: str, addr_spec: str) -> str:
    """`Name <addr>`, checked: no line breaks, a valid ASCII address (no SMTPUTF8 yet); a name
    that is not plain ASCII goes out as encoded words."""
    _no_line_breaks(header, name)
    _no_line_breaks(header, addr_spec)
    if not _SIMPLE_ADDRESS.match(addr_spec):
        try:
            addr_spec = Address(display_name=name, addr_spec=addr_spec).addr_spec
        except (ValueError, IndexError, MessageError) as exc:
            raise PermanentSendError(f"header {header} has an invalid address ({exc})") from None
    if not addr_spec.isascii():
        raise PermanentSendError(f"header {header} has a non-ASCII address (no SMTPUTF8)")
    if _plain(name):
        return formataddr((name, addr_spec))
    return _Encoded(f"{_encoded_words(name)}\r\n <{addr_spec}>")


# dot-atom@dot-atom in ASCII (RFC 5322 atext): the email package's parser accepts such an address
# and gives it back unchanged, so nearly every buyer's address is not parsed again per message.
_ATOMS = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_SIMPLE_ADDRESS = re.compile(rf"{_ATOMS}@{_ATOMS}\Z")


@lru_cache(maxsize=16)
def _store_mailbox(header: str, name: str, addr_spec: str) -> str:
    """The store's own From and Reply-To: the same for every message, so checked and encoded once."""
    return _mailbox(header, name, addr_spec)


class _Wire(Compat32):
    """compat32 (header values stored as given, checked above) writing short ASCII values and
    values encoded here as they are: its general folding builds a `Header` for every header."""

    def fold_binary(self, name: str, value: str) -> bytes:
        if isinstance(value, _Encoded) or (
            value.isascii() and len(name) + len(value) + 2 <= (self.max_line_length or 78)
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


# Both parts are quoted-printable UTF-8: 7-bit clean for any relay (no 8BITMIME needed), and a
# QP body can never contain the boundary, which starts with "=_" ("=" is written "=3D" in QP).
_WIRE = _Wire(linesep="\r\n")


def build_email(
    message: OutgoingMessage,
    *,
    from_name: str,
    from_address: str,
    reply_to: str = "",
    now: datetime | None = None,
) -> Message:
    """The MIME message: multipart/alternative (text, then HTML), UTF-8, with every header checked
    for line breaks so buyer data cannot add headers. Raises PermanentSendError when the message
    cannot be built (bad address, line break in a header)."""
    try:
        return _build_email(
            message, from_name=from_name, from_address=from_address, reply_to=reply_to, now=now
        )
    except (ValueError, TypeError, MessageError) as exc:
        raise PermanentSendError(f"message cannot be built ({type(exc).__name__})") from None


def email_bytes(email: Message) -> bytes:
    """The message as sent: CRLF line endings, 7-bit headers (RFC 2047 where needed)."""
    try:
        return email.as_bytes(policy=_WIRE)
    except (ValueError, UnicodeError) as exc:
        raise PermanentSendError(f"message cannot be serialised ({type(exc).__name__})") from None


def _build_email(
    message: OutgoingMessage,
    *,
    from_name: str,
    from_address: str,
    reply_to: str = "",
    now: datetime | None = None,
) -> Message:
    msg = MIMEMultipart("alternative", boundary=_boundary())
    for name, value in _headers(message, from_name, from_address, reply_to, now):
        msg[name] = value
    msg.attach(_text_part("plain", message.text))
    msg.attach(_text_part("html", message.html))
    return msg


def _boundary() -> str:
    return f"=_{secrets.token_hex(12)}"


def _headers(
    message: OutgoingMessage,
    from_name: str,
    from_address: str,
    reply_to: str,
    now: datetime | None,
) -> list[tuple[str, str]]:
    """The message's own headers, in order, each checked (and encoded where needed)."""
    headers = [
        ("Message-ID", _no_line_breaks("Message-ID", message.message_id)),
        ("Date", format_datetime(now or datetime.now(UTC))),
        ("From", _store_mailbox("From", from_name, from_address)),
        ("To", _mailbox("To", message.to_name, message.to_address)),
    ]
    if reply_to:
        headers.append(("Reply-To", _store_mailbox("Reply-To", from_name, reply_to)))
    headers.append(("Subject", _text_header(_no_line_breaks("Subject", message.subject))))
    headers.append(("Auto-Submitted", "auto-generated"))  # RFC 3834: no auto-replies to us
    if message.unsubscribe:
        target = _no_line_breaks("List-Unsubscribe", message.unsubscribe)
        if not target.isascii():
            raise PermanentSendError("header List-Unsubscribe must be an ASCII URL")
        headers.append(("List-Unsubscribe", f"<{target}>"))
        if target.startswith("https://"):
            headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))  # RFC 8058
    for name, value in message.headers:
        _no_line_breaks(name, name)
        if not name or ":" in name or " " in name or not name.isascii():
            raise PermanentSendError(f"invalid header name {name!r}")
        headers.append((name, _text_header(_no_line_breaks(name, value))))
    if message.locale:
        headers.append(("Content-Language", _no_line_breaks("Content-Language", message.locale)))
    return headers


def _qp(text: str) -> str:
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")


def _text_part(subtype: str, text: str) -> MIMENonMultipart:
    """A UTF-8 text part, quoted-printable by binascii (in C; the email package's own encoder
    walks the text character by character in Python)."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(_qp(text))
    return part


_LINE_END = re.compile(r"\r\n|\r|\n")


def wire_bytes(
    message: OutgoingMessage,
    *,
    from_name: str,
    from_address: str,
    reply_to: str = "",
    now: datetime | None = None,
    boundary: str | None = None,
) -> bytes:
    """`email_bytes(build_email(...))` written directly: the same headers, folded by the same
    policy, the same parts, byte for byte (the tests compare the two), without building a
    `Message` tree and walking it with the email package's generator, which cost as much as the
    rest of a message's sending. Raises PermanentSendError as those two do."""
    boundary = boundary or _boundary()
    fold = _WIRE.fold_binary
    try:
        head = [
            fold("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
            fold("MIME-Version", "1.0"),
        ]
        for name, value in _headers(message, from_name, from_address, reply_to, now):
            head.append(fold(name, value))
        out = b"".join(head) + b"\r\n--" + boundary.encode("ascii") + b"\r\n"
        separator = b"\r\n--" + boundary.encode("ascii") + b"\r\n"
        parts = []
        for subtype, text in (("plain", message.text), ("html", message.html)):
            parts.append(
                fold("Content-Type", f'text/{subtype}; charset="utf-8"')
                + fold("MIME-Version", "1.0")
                + fold("Content-Transfer-Encoding", "quoted-printable")
                + b"\r\n"
                + _LINE_END.sub("\r\n", _qp(text)).encode("ascii")
            )
        return out + separator.join(parts) + b"\r\n--" + boundary.encode("ascii") + b"--\r\n"
    except (ValueError, TypeError, MessageError) as exc:  # UnicodeError is a ValueError
        raise PermanentSendError(f"message cannot be built ({type(exc).__name__})") from None


def _classify_reply(stage: str, code: int, text: str) -> RetryableSendError | PermanentSendError:
    reason = f"{stage}: server replied {code} {text}".strip()
    if 400 <= code < 500:
        return RetryableSendError(reason)
    return PermanentSendError(reason)


class _StaleConnection(Exception):
    """A reused connection failed before the content went out: the server had closed it."""


class SmtpChannel:
    """Sends messages over SMTP: connect, (STARTTLS), (AUTH), then MAIL, RCPT, DATA per message.

    `send` uses a connection of its own; `session()` keeps one open for a run of messages."""

    name = "email"

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        from_address: str,
        from_name: str,
        reply_to: str = "",
        clock: Callable[[], datetime] | None = None,
        stage_hook: Callable[[str], None] | None = None,
    ) -> None:
        """`stage_hook`, when given, is called with "connected" (each new connection),
        "content_next" (after 354, before the content), "content_sent" (before the reply) and
        "accepted" (after 250): the named crash points the send job's tests kill the process at."""
        self.settings = settings
        self._hook = stage_hook or (lambda stage: None)
        self.from_address = from_address
        self.from_name = from_name
        self.reply_to = reply_to
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        s = self.settings
        return f"SmtpChannel(host={s.host!r}, port={s.port}, tls={s.tls!r}, user={s.username!r})"

    async def send(self, message: OutgoingMessage) -> Receipt:
        """One message over a connection of its own, closed with QUIT after the reply."""
        async with self.session() as session:
            return await session.send(message)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[SmtpSession]:
        """A session that reuses one connection for the messages sent through it; it says QUIT
        when the block ends, and only closes the socket if the block raised."""
        session = SmtpSession(self)
        try:
            yield session
        except BaseException:
            session.drop()
            raise
        await session.quit()

    def payload(self, message: OutgoingMessage) -> bytes:
        """The DATA content: the MIME message, CRLF, dot-stuffed, ending in ".". Raises
        PermanentSendError when it cannot be built."""
        content = wire_bytes(
            message,
            from_name=self.from_name,
            from_address=self.from_address,
            reply_to=self.reply_to,
            now=self._clock(),
        )
        # Dot-stuffing and CRLF, exactly as aiosmtplib's own DATA would send them.
        return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(content)) + b".\r\n"


class SmtpSession:
    """One SMTP connection at a time, opened on the first message and reused for the next.

    After a refused transaction the connection is RSET (closed if that fails); after a lost
    connection, a timeout or an ambiguous end of DATA it is closed, and the next message opens a
    new one. Errors are the channel's: retryable, permanent or ambiguous, as for `send`.
    """

    name = "email"

    def __init__(self, channel: SmtpChannel) -> None:
        self.channel = channel
        self.connections = 0  # opened so far: for tests and figures
        self._smtp: aiosmtplib.SMTP | None = None
        self._sent_here = 0  # messages accepted on the current connection
        self._prepared: tuple[OutgoingMessage, bytes] | None = None

    def prepare(self, message: OutgoingMessage) -> None:
        """Build `message`'s content now (from `while_waiting`), for the `send` that follows.
        A message that cannot be built is left for `send` to refuse."""
        try:
            self._prepared = (message, self.channel.payload(message))
        except PermanentSendError:
            self._prepared = None

    async def send(
        self, message: OutgoingMessage, *, while_waiting: Callable[[], None] | None = None
    ) -> Receipt:
        """Send one message. `while_waiting`, if given, is called once the content is written,
        before the reply is read: the server reads the message meanwhile, so a caller can prepare
        its next one there instead of after. It must not raise."""
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[0] is message:
            payload = prepared[1]
        else:
            payload = self.channel.payload(message)  # one that cannot be built never connects
        if self._smtp is not None:
            try:
                return await self._transaction(message, payload, while_waiting, reused=True)
            except _StaleConnection:
                self.drop()
        await self._connect()
        return await self._transaction(message, payload, while_waiting, reused=False)

    async def quit(self) -> None:
        """Say goodbye on the open connection, if any; a failed goodbye changes nothing."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            smtp.close()

    def drop(self) -> None:
        """Close the socket without a goodbye (after an error, a crash point or a cancellation)."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    async def _connect(self) -> None:
        s = self.channel.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout_seconds,
            use_tls=s.tls == "implicit",
            start_tls=False,
            tls_context=s.tls_context,
            local_hostname=s.local_hostname,
        )
        stage = "connect"
        try:
            await smtp.connect()
            self.connections += 1
            self.channel._hook("connected")
            if s.tls == "starttls":
                stage = "starttls"
                await smtp.starttls(tls_context=s.tls_context)
            if s.username:
                stage = "login"
                await smtp.login(s.username, s.password.reveal())
        except aiosmtplib.SMTPAuthenticationError as exc:
            smtp.close()
            # Never echo what was sent; the server's words are enough.
            raise _classify_reply("login", exc.code, "authentication failed") from None
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            raise _classify_reply(stage, exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            smtp.close()
            raise RetryableSendError(f"{stage}: {type(exc).__name__} ({exc})") from None
        except BaseException:
            smtp.close()  # a crash-point hook or a cancellation: leave no connection behind
            raise
        self._smtp = smtp
        self._sent_here = 0

    async def _transaction(
        self,
        message: OutgoingMessage,
        payload: bytes,
        while_waiting: Callable[[], None] | None,
        *,
        reused: bool,
    ) -> Receipt:
        smtp = self._smtp
        assert smtp is not None
        s = self.channel.settings
        hook = self.channel._hook
        stage = "mail"
        content_sent = False
        try:
            await smtp.mail(self.channel.from_address)
            stage = "rcpt"
            await smtp.rcpt(message.to_address)
            stage = "data"
            start = await smtp.execute_command(b"DATA")
            if start.code != 354:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            protocol = smtp.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("Connection lost")
            hook("content_next")
            protocol.write(payload)
            content_sent = True
            stage = "end of data"
            hook("content_sent")
            if while_waiting is not None:
                while_waiting()
            reply = await protocol.read_response(timeout=s.data_timeout_seconds)
        except aiosmtplib.SMTPResponseException as exc:
            if content_sent and not 400 <= exc.code < 600:
                self.drop()
                # An unreadable answer to the content is no answer: it may have been accepted.
                raise AmbiguousSendError(
                    f"{stage}: unreadable reply after the message was sent; "
                    "it may have been delivered"
                ) from None
            if reused and stage == "mail" and exc.code == 421:
                raise _StaleConnection from None  # closing after an idle wait: reconnect once
            await self._after_refusal(exc.code)
            raise _classify_reply(stage, exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self.drop()
            what = type(exc).__name__
            if content_sent:
                raise AmbiguousSendError(
                    f"{stage}: {what} after the message was sent, before the server replied; "
                    "it may have been delivered"
                ) from None
            if reused and stage == "mail":
                raise _StaleConnection from None  # closed while idle: reconnect once
            raise RetryableSendError(f"{stage}: {what} ({exc})") from None
        except BaseException:
            self.drop()  # a crash-point hook or a cancellation: leave no connection behind
            raise
        if not 200 <= reply.code < 300:
            await self._after_refusal(reply.code)
            raise _classify_reply(stage, reply.code, reply.message)
        self._sent_here += 1
        hook("accepted")
        if self._sent_here >= s.messages_per_connection:
            await self.quit()
        return Receipt(
            channel=self.channel.name,
            message_id=message.message_id,
            status=ReceiptStatus.SENT,
            detail=f"{reply.code} {reply.message}".strip(),
        )

    async def _after_refusal(self, code: int) -> None:
        """After a refused transaction: RSET, so the next message starts clean. A server that
        said 421 (closing) or does not answer RSET loses its connection."""
        smtp = self._smtp
        if smtp is None:
            return
        if code == 421 or not smtp.is_connected:
            self.drop()
            return
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self.drop()
