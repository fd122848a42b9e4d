"""HTTP for adapters: one `httpx.AsyncClient` per adapter, and bounded retries of transient errors.

What counts as transient (worth another attempt, with exponential backoff and jitter):
connect errors, timeouts, connection resets and other transport errors, HTTP 5xx and HTTP 429.
A `Retry-After` header (seconds or an HTTP date) is honoured: the wait is at least what the carrier
asked for. If the carrier asks for more than `RetryPolicy.max_retry_after`, we give up at once and
report the wait to the caller instead of holding the poll job hostage.

Everything else (2xx, 4xx other than 429) is returned to the adapter, which knows what its carrier
means by a 401 or a 404. When the attempts are spent, `RetriesExhausted` carries the last error and
the carrier's last `Retry-After`, so the adapter can turn it into `TemporaryFailure` results.

The transport is injectable (`transport=`) so tests can point a client anywhere; they talk to the
loopback emulators in `carriers.emulators` rather than mocking.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from carriers.base import AdapterSettings
from carriers.ratelimit import Limiter

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request. Tests use tiny delays; production keeps the defaults."""

    attempts: int = 4  # total, including the first
    initial_delay: float = 0.5  # seconds; doubles per attempt
    max_delay: float = 20.0
    jitter: float = 0.5  # up to this many seconds added at random to each wait
    max_retry_after: float = 60.0  # a longer Retry-After ends the attempts at once


class TransientError(Exception):
    """One attempt failed in a way another attempt might not."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class RetriesExhausted(Exception):
    """Every attempt failed transiently (or the carrier asked us to wait too long)."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


def make_client(
    settings: AdapterSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """The adapter's one client: base URL, timeouts from settings, no redirects, our User-Agent."""
    timeout = httpx.Timeout(settings.timeout_seconds, connect=min(settings.timeout_seconds, 10.0))
    return httpx.AsyncClient(
        base_url=settings.base_url.rstrip("/") + "/",
        timeout=timeout,
        transport=transport,
        headers={"User-Agent": "parcelwatch", **(headers or {})},
        follow_redirects=False,
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP date); None if absent or garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _classify(response: httpx.Response) -> None:
    if response.status_code in RETRYABLE_STATUS or response.status_code >= 500:
        raise TransientError(
            f"HTTP {response.status_code}", parse_retry_after(response.headers.get("Retry-After"))
        )


async def send_with_retry(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    limiter: Limiter,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request, retrying transient failures; every attempt first waits for the limiter.

    Returns the first non-transient response (2xx or a 4xx other than 429). Raises
    `RetriesExhausted` when attempts run out; `QuotaExhausted` from the limiter passes through.
    """

    def should_retry(exc: BaseException) -> bool:
        if not isinstance(exc, TransientError):
            return False
        return exc.retry_after is None or exc.retry_after <= policy.max_retry_after

    backoff = wait_exponential_jitter(
        multiplier=policy.initial_delay, max=policy.max_delay, jitter=policy.jitter
    )

    def wait(state: RetryCallState) -> float:
        delay = backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return delay

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        retry=retry_if_exception(should_retry),
        sleep=sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                await limiter.acquire()
                try:
                    response = await client.request(method, url, **kwargs)
                except httpx.TimeoutException as exc:
                    raise TransientError(f"timeout: {type(exc).__name__}") from exc
                except httpx.TransportError as exc:
                    raise TransientError(f"transport error: {type(exc).__name__}: {exc}") from exc
                _classify(response)
                return response
    except TransientError as exc:
        raise RetriesExhausted(exc.detail, exc.retry_after) from exc
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
