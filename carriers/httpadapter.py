"""The base every HTTP carrier adapter fills in: batching, rate limit, retries and breaker in one place.

A carrier module subclasses `HttpAdapter`, declares `name`, `batch_size` and `rate_limit`, and
implements one hook, `track_batch(numbers)`, which sends requests through `self.request(...)`
(limited and retried) and parses the answers with its own code table. The base then promises, for
every adapter alike:

* at most `batch_size` numbers reach `track_batch` at once;
* every request waits for the limiter (the carrier's declared per-second and per-day limits,
  lowered by settings, never raised);
* transient failures are retried (see `carriers.http`); when the attempts are spent, or the carrier
  answers something unreadable (`MalformedResponse`, or any parse error), the batch's numbers come
  back as `TemporaryFailure`, never as an exception;
* after repeated failed batches the carrier's `CircuitBreaker` opens and calls fail fast;
* `CarrierAlarm` (bad key, quota gone) propagates to the caller, which alerts a person;
* exactly one result per distinct number asked for.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Self

import httpx

from carriers.base import (
    Adapter,
    AdapterSettings,
    CarrierAlarm,
    Clock,
    TemporaryFailure,
    TrackResult,
)
from carriers.breaker import CircuitBreaker
from carriers.http import RetriesExhausted, RetryPolicy, make_client, send_with_retry
from carriers.numbers import normalise
from carriers.ratelimit import CarrierLimiter, Limiter, QuotaExhausted

log = logging.getLogger(__name__)


class MalformedResponse(Exception):
    """The carrier answered, but not in a shape we can read (bad JSON, wrong type, missing fields)."""


def utc_now() -> datetime:
    """The production clock."""
    return datetime.now(UTC)


class HttpAdapter(Adapter, abc.ABC):
    """An adapter speaking HTTP through one client, one limiter, one retry policy and one breaker."""

    def __init__(
        self,
        settings: AdapterSettings,
        *,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: Limiter | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or utc_now
        self.client = make_client(settings, transport=transport, headers=self.auth_headers())
        self.limiter: Limiter = limiter or CarrierLimiter(
            self.per_second(), self.per_day(), clock=self.clock
        )
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(clock=self.clock)
        self._sleep = sleep

    # -- hooks -------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        """Headers sent with every request (API key). Override; never log the values."""
        return {}

    @abc.abstractmethod
    async def track_batch(self, numbers: Sequence[str]) -> list[TrackResult]:
        """Track at most `batch_size` numbers. Raise `MalformedResponse` for unreadable answers."""

    # -- limits --------------------------------------------------------------------------------

    def per_second(self) -> float:
        """The declared per-second limit, lowered (never raised) by settings."""
        mine = self.settings.rate_limit_per_second
        return min(self.rate_limit.per_second, mine) if mine else self.rate_limit.per_second

    def per_day(self) -> int | None:
        """The declared daily limit, lowered (never raised) by settings; None if unlimited."""
        limits = [x for x in (self.rate_limit.per_day, self.settings.daily_limit) if x]
        return min(limits) if limits else None

    # -- plumbing ------------------------------------------------------------------------------

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One limited, retried request relative to the base URL (`path` without a leading slash)."""
        return await send_with_retry(
            self.client,
            method,
            path.lstrip("/"),
            policy=self.retry,
            limiter=self.limiter,
            sleep=self._sleep,
            **kwargs,
        )

    async def track(self, numbers: Sequence[str]) -> list[TrackResult]:
        wanted = list(dict.fromkeys(numbers))
        results: list[TrackResult] = []
        for start in range(0, len(wanted), self.batch_size):
            batch = wanted[start : start + self.batch_size]
            results.extend(await self._track_guarded(batch))
        return results

    async def _track_guarded(self, batch: list[str]) -> list[TrackResult]:
        if not self.breaker.allow():
            wait = self.breaker.retry_after()
            return _failures(batch, f"{self.name} circuit open", wait or None)
        try:
            answered = await self.track_batch(batch)
        except CarrierAlarm:
            self.breaker.cancel_trial()
            raise
        except QuotaExhausted as exc:
            self.breaker.cancel_trial()
            return _failures(batch, f"{self.name} daily limit reached", exc.retry_after)
        except RetriesExhausted as exc:
            self._failed(batch, exc.detail)
            return _failures(batch, exc.detail, exc.retry_after)
        except (MalformedResponse, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            # An answer we cannot read is the carrier's fault or a format change; either way the
            # poll job must go on with the other carriers, so it becomes a result, not a crash.
            detail = f"unreadable answer: {type(exc).__name__}: {exc}"
            self._failed(batch, detail)
            return _failures(batch, detail, None)
        self.breaker.record_success()
        by_number = {normalise(result.number): result for result in answered}
        results: list[TrackResult] = []
        for n in batch:
            result = by_number.get(normalise(n))
            if result is None:
                result = TemporaryFailure(n, f"{self.name} did not answer for this number")
            elif result.number != n:  # answer under the number as the caller wrote it
                result = dataclasses.replace(result, number=n)
            results.append(result)
        return results

    def _failed(self, batch: list[str], detail: str) -> None:
        self.breaker.record_failure()
        log.warning(
            "carrier batch failed",
            extra={
                "carrier": self.name,
                "numbers": len(batch),
                "detail": detail,
                "breaker": self.breaker.state.value,
            },
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _failures(batch: Sequence[str], detail: str, retry_after: float | None) -> list[TrackResult]:
    return [TemporaryFailure(n, detail, retry_after) for n in batch]
