"""Email over SMTP with aiosmtplib, speaking the conversation step by step so every failure is known
to have happened before or after the message content was sent.

Why step by step: between the final "." of DATA and the server's reply the outcome is unknowable
(RFC 1047). A failure before that point is safe to retry; a lost connection or a timeout after it is
an AmbiguousSendError, and the caller must not resend blindly. Commands use a short timeout; the
reply to the end of DATA gets a long one (RFC 5321 §4.5.3.2.6 asks for 10 minutes), because a short
one turns a slow server into an ambiguous send.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
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

    def __post_init__(self) -> None:
        if isinstance(self.password, str):  # accept a plain string, keep it wrapped
            object.__setattr__(self, "password", Secret(self.password))
        if self.tls not in ("none", "starttls", "implicit"):
            raise ValueError(f"tls must be none, starttls or implicit, not {self.tls!r}")


def _no_line_breaks(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise PermanentSendError(f"header {name} contains a line break; refusing to build it")
    return value


def _address(header: str, name: str, addr_spec: str) -> Address:
    _no_line_breaks(header, name)
    _no_line_breaks(header, addr_spec)
    try:
        return Address(display_name=name, addr_spec=addr_spec)
    except (ValueError, IndexError, MessageError) as exc:
        raise PermanentSendError(f"header {header} has an invalid address ({exc})") from None


def build_email(
    message: OutgoingMessage,
    *,
    from_name: str,
    from_address: str,
    reply_to: str = "",
    now: datetime | None = None,
) -> EmailMessage:
    """The MIME message: multipart/alternative (text, then HTML), UTF-8, with every header checked
    for line breaks so buyer data cannot add headers. Raises PermanentSendError when the message
    cannot be built (bad address, line break in a header)."""
    try:
        return _build_email(
            message, from_name=from_name, from_address=from_address, reply_to=reply_to, now=now
        )
    except (ValueError, TypeError, MessageError) as exc:
        raise PermanentSendError(f"message cannot be built ({type(exc).__name__})") from None


def _build_email(
    message: OutgoingMessage,
    *,
    from_name: str,
    from_address: str,
    reply_to: str = "",
    now: datetime | None = None,
) -> EmailMessage:
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["Message-ID"] = _no_line_breaks("Message-ID", message.message_id)
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["From"] = _address("From", from_name, from_address)
    msg["To"] = _address("To", message.to_name, message.to_address)
    if reply_to:
        msg["Reply-To"] = _address("Reply-To", from_name, reply_to)
    msg["Subject"] = _no_line_breaks("Subject", message.subject)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us
    if message.unsubscribe:
        target = _no_line_breaks("List-Unsubscribe", message.unsubscribe)
        msg["List-Unsubscribe"] = f"<{target}>"
        if target.startswith("https://"):
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    for name, value in message.headers:
        _no_line_breaks(name, name)
        if not name or ":" in name or " " in name:
            raise PermanentSendError(f"invalid header name {name!r}")
        msg[name] = _no_line_breaks(name, value)
    msg.set_content(message.text, charset="utf-8")
    msg.add_alternative(message.html, subtype="html", charset="utf-8")
    if message.locale:  # after set_content, which clears every Content-* header
        msg["Content-Language"] = _no_line_breaks("Content-Language", message.locale)
    return msg


def _classify_reply(stage: str, code: int, text: str) -> RetryableSendError | PermanentSendError:
    reason = f"{stage}: server replied {code} {text}".strip()
    if 400 <= code < 500:
        return RetryableSendError(reason)
    return PermanentSendError(reason)


class SmtpChannel:
    """Sends each message over its own SMTP connection: connect, (STARTTLS), (AUTH), MAIL, RCPT, DATA."""

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
        """`stage_hook`, when given, is called with "connected", "content_next" (after 354, before
        the content), "content_sent" (before the reply) and "accepted" (after 250): the named crash
        points the send job's tests kill the process at."""
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
        email = build_email(
            message,
            from_name=self.from_name,
            from_address=self.from_address,
            reply_to=self.reply_to,
            now=self._clock(),
        )
        try:
            content = email.as_bytes()
        except (ValueError, UnicodeError) as exc:
            raise PermanentSendError(
                f"message cannot be serialised ({type(exc).__name__})"
            ) from None
        # Dot-stuffing and CRLF, exactly as aiosmtplib's own DATA would send them.
        payload = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(content)) + b".\r\n"

        s = self.settings
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
        content_sent = False
        try:
            await smtp.connect()
            self._hook("connected")
            if s.tls == "starttls":
                stage = "starttls"
                await smtp.starttls(tls_context=s.tls_context)
            if s.username:
                stage = "login"
                await smtp.login(s.username, s.password.reveal())
            stage = "mail"
            await smtp.mail(self.from_address)
            stage = "rcpt"
            await smtp.rcpt(message.to_address)
            stage = "data"
            start = await smtp.execute_command(b"DATA")
            if start.code != 354:
                raise _classify_reply(stage, start.code, start.message)
            protocol = smtp.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("Connection lost")
            self._hook("content_next")
            protocol.write(payload)
            content_sent = True
            stage = "end of data"
            self._hook("content_sent")
            reply = await protocol.read_response(timeout=s.data_timeout_seconds)
        except (RetryableSendError, PermanentSendError):
            smtp.close()
            raise
        except aiosmtplib.SMTPAuthenticationError as exc:
            smtp.close()
            # Never echo what was sent; the server's words are enough.
            raise _classify_reply("login", exc.code, "authentication failed") from None
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            if content_sent and not 400 <= exc.code < 600:
                # An unreadable answer to the content is no answer: it may have been accepted.
                raise AmbiguousSendError(
                    f"{stage}: unreadable reply after the message was sent; "
                    "it may have been delivered"
                ) from None
            raise _classify_reply(stage, exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            smtp.close()
            what = type(exc).__name__
            if content_sent:
                raise AmbiguousSendError(
                    f"{stage}: {what} after the message was sent, before the server replied; "
                    "it may have been delivered"
                ) from None
            raise RetryableSendError(f"{stage}: {what} ({exc})") from None
        except BaseException:
            smtp.close()  # a crash-point hook or a cancellation: leave no connection behind
            raise
        if not 200 <= reply.code < 300:
            smtp.close()
            raise _classify_reply(stage, reply.code, reply.message)
        try:
            self._hook("accepted")
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass  # the message is accepted; a failed goodbye changes nothing
        finally:
            smtp.close()
        return Receipt(
            channel=self.name,
            message_id=message.message_id,
            status=ReceiptStatus.SENT,
            detail=f"{reply.code} {reply.message}".strip(),
        )
