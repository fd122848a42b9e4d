"""Ways a rendered message leaves parcelwatch: email (SMTP), webhook, a manual queue, a recorder.

Every channel has the same small surface, `await channel.send(message) -> Receipt`, and fails with
one of three errors the send job can act on: retry later, give up, or hold for a person because the
message may already have gone out.
"""

from messages.channels.base import (
    AmbiguousSendError,
    Channel,
    OutgoingMessage,
    PermanentSendError,
    Receipt,
    ReceiptStatus,
    RetryableSendError,
    Secret,
    SendError,
    SessionChannel,
    make_message_id,
    unsubscribe_target,
)
from messages.channels.manual import ManualChannel
from messages.channels.recording import RecordingChannel
from messages.channels.smtp import SmtpChannel, SmtpSession, SmtpSettings, build_email
from messages.channels.webhook import WebhookChannel, sign, verify_signature

__all__ = [
    "AmbiguousSendError",
    "Channel",
    "ManualChannel",
    "OutgoingMessage",
    "PermanentSendError",
    "Receipt",
    "ReceiptStatus",
    "RecordingChannel",
    "RetryableSendError",
    "Secret",
    "SendError",
    "SessionChannel",
    "SmtpChannel",
    "SmtpSession",
    "SmtpSettings",
    "WebhookChannel",
    "build_email",
    "make_message_id",
    "sign",
    "unsubscribe_target",
    "verify_signature",
]
