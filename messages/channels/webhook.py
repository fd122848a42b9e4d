"""The webhook channel: the message as JSON, POSTed and signed, for a chat tool or a marketplace
messenger bridge.

The body is signed with HMAC-SHA256 over "<timestamp>.<body>": the receiver recomputes it with the
shared secret (`verify_signature`) and rejects old timestamps, so a captured request cannot be
replayed later. `Idempotency-Key` carries the message id so a receiver can drop a second copy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from messages.channels.base import (
    AmbiguousSendError,
    OutgoingMessage,
    PermanentSendError,
    Receipt,
    ReceiptStatus,
    RetryableSendError,
    Secret,
)

SIGNATURE_HEADER = "X-Parcelwatch-Signature"
TIMESTAMP_HEADER = "X-Parcelwatch-Timestamp"


def sign(secret: Secret | str, timestamp: str, body: bytes) -> str:
    """The signature header value: `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`."""
    key = secret.reveal() if isinstance(secret, Secret) else secret
    mac = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: Secret | str,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance_seconds: float = 300,
) -> bool:
    """For receivers: True when the signature matches and the timestamp is recent."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_seconds and hmac.compare_digest(sign(secret, timestamp, body), header)


def payload(message: OutgoingMessage) -> dict[str, object]:
    """The JSON document a receiver gets."""
    return {
        "message_id": message.message_id,
        "kind": message.kind,
        "order_id": message.order_id,
        "locale": message.locale,
        "to": {"address": message.to_address, "name": message.to_name},
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "headers": dict(message.headers),
    }


class _RedactWebhookUrls(logging.Filter):
    """httpx logs every request's full URL at INFO; webhook URLs often carry a token in the path.
    This filter, on the `httpx` logger, replaces a registered URL with its scheme and host."""

    def __init__(self) -> None:
        super().__init__("parcelwatch-webhook-redact")
        self.urls: dict[str, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and self.urls:
            args = []
            for arg in record.args:
                text = str(arg)
                for url, shown in self.urls.items():
                    if url in text:
                        arg = text.replace(url, shown + "/…")
                args.append(arg)
            record.args = tuple(args)
        return True


_REDACTOR = _RedactWebhookUrls()
logging.getLogger("httpx").addFilter(_REDACTOR)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class WebhookChannel:
    """POSTs each message as signed JSON. 2xx: sent; 408/429/5xx: retry; other 4xx: permanent."""

    def __init__(
        self,
        url: str,
        secret: Secret | str,
        *,
        timeout_seconds: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        name: str = "webhook",
    ) -> None:
        self._url = url
        self._secret = secret if isinstance(secret, Secret) else Secret(secret)
        self._timeout = timeout_seconds
        self._transport = transport
        self._clock = clock
        self.name = name
        # Webhook URLs often carry a token in their path: show only where they point.
        parts = urlsplit(url)
        self._where = f"{parts.scheme}://{parts.hostname}"
        _REDACTOR.urls[url] = self._where

    def __repr__(self) -> str:
        return f"WebhookChannel(to={self._where!r})"

    async def send(self, message: OutgoingMessage) -> Receipt:
        body = json.dumps(payload(message), ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "parcelwatch",
            "Idempotency-Key": message.message_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=self._timeout, follow_redirects=False
            ) as client:
                response = await client.post(self._url, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise RetryableSendError(f"{self._where}: {type(exc).__name__}") from None
        except (httpx.WriteError, httpx.WriteTimeout) as exc:
            # The request never got to its end; no receiver acts on half a request.
            raise RetryableSendError(f"{self._where}: {type(exc).__name__}") from None
        except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            raise AmbiguousSendError(
                f"{self._where}: {type(exc).__name__} after the request was sent; "
                "it may have been received"
            ) from None
        except httpx.HTTPError as exc:
            raise RetryableSendError(f"{self._where}: {type(exc).__name__}") from None
        status = response.status_code
        detail = f"HTTP {status}"
        if 200 <= status < 300:
            return Receipt(self.name, message.message_id, ReceiptStatus.SENT, detail)
        if status in (408, 425, 429) or status >= 500:
            raise RetryableSendError(f"{self._where}: {detail}", _retry_after(response))
        raise PermanentSendError(f"{self._where}: {detail}")
