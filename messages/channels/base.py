"""The channel interface: the message a channel sends, the receipt it returns, the errors it raises."""

from __future__ import annotations

import re
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from messages.render import Rendered


class Secret:
    """A password or signing key that never shows itself in a repr, str, log line or traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: call only where it is handed to the protocol that needs it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


_MESSAGE_ID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")


def make_message_id(key: str, domain: str) -> str:
    """A deterministic Message-ID for one outreach row, the same on every attempt.

    `make_message_id("outreach-123", "example.com")` is `<parcelwatch.outreach-123@example.com>`.
    A relay or a person can then recognise a second copy of the same message.
    """
    local = re.sub(r"[^A-Za-z0-9.\-_+]", "-", key)
    host = re.sub(r"[^A-Za-z0-9.\-]", "-", domain) or "parcelwatch.invalid"
    return f"<parcelwatch.{local}@{host}>"


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered message for one recipient, ready for any channel."""

    message_id: str  # deterministic, from the caller: "<local@domain>"
    to_address: str
    to_name: str
    subject: str
    text: str
    html: str
    locale: str
    kind: str = ""
    order_id: str = ""
    unsubscribe: str = ""  # https URL or mailto: for List-Unsubscribe; empty: no header
    headers: tuple[tuple[str, str], ...] = field(default=())  # extra headers, e.g. X-Order-Id

    def __post_init__(self) -> None:
        if not _MESSAGE_ID.match(self.message_id):
            raise ValueError(f"message_id {self.message_id!r} is not of the form <local@domain>")

    @classmethod
    def compose(
        cls,
        rendered: Rendered,
        *,
        message_id: str,
        to_address: str,
        to_name: str,
        kind: str = "",
        order_id: str = "",
        unsubscribe: str = "",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> OutgoingMessage:
        """The message for a rendered template: subject, parts and language come from `rendered`."""
        return cls(
            message_id=message_id,
            to_address=to_address,
            to_name=to_name,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            locale=rendered.locale,
            kind=kind,
            order_id=order_id,
            unsubscribe=unsubscribe,
            headers=headers,
        )


def unsubscribe_target(unsubscribe_url: str, reply_address: str) -> str:
    """What List-Unsubscribe points at: the store's URL if it has one, else a mailto: to the reply
    address (config `store.unsubscribe_url`: "empty uses a mailto: to the reply address")."""
    if unsubscribe_url:
        return unsubscribe_url
    return f"mailto:{reply_address}?subject=unsubscribe" if reply_address else ""


class ReceiptStatus(StrEnum):
    SENT = "sent"  # the peer accepted it (SMTP 250, HTTP 2xx)
    AWAITING_STAFF = "awaiting_staff"  # manual: a person sends it from the marketplace chat
    RECORDED = "recorded"  # the recording channel kept it (tests)


@dataclass(frozen=True)
class Receipt:
    """What the channel knows after a send: who accepted it and what they said."""

    channel: str
    message_id: str
    status: ReceiptStatus
    detail: str = ""  # the peer's reply ("250 2.0.0 queued as 4F2A"), never a secret


class SendError(Exception):
    """A send did not succeed. `reason` is safe to log: no secret, no full address."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryableSendError(SendError):
    """Nothing was delivered and trying again later may work (4xx, refused connection, timeout
    before the message content was sent, HTTP 429/5xx)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Nothing was delivered and trying again will not help (5xx, malformed message, HTTP 4xx)."""


class AmbiguousSendError(SendError):
    """The message content went out but no answer came back (connection lost or timeout after the
    end of DATA, or after an HTTP request was sent). It may have been delivered: never resend
    automatically; hold it for a person."""


@runtime_checkable
class Channel(Protocol):
    """Sends one message. Raises RetryableSendError, PermanentSendError or AmbiguousSendError."""

    name: str

    async def send(self, message: OutgoingMessage) -> Receipt: ...


@runtime_checkable
class SessionChannel(Channel, Protocol):
    """A channel that can keep a connection open for a run of messages (SMTP). The session sends
    like the channel does, with the same errors; a send job opens one per run and closes it."""

    def session(self) -> AbstractAsyncContextManager[Channel]: ...
