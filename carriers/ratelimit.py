"""Per-carrier rate limiting: never more requests in any one second than the carrier allows.

An adapter calls `await limiter.acquire()` before every HTTP request, retries included. The
`Limiter` protocol is all an adapter knows, so a database-backed limiter shared by several daemons
can replace the in-process `CarrierLimiter` later without touching any adapter.

`SlidingWindowLimiter` keeps the start times of the last N requests and waits until the oldest is
more than a window old: this bounds the count in *every* window, not just on average, which is what
a carrier measuring "requests in the last second" sees. A margin (default 0.2 s) absorbs the jitter
between the moment we are allowed to send and the moment the request reaches the carrier: the first
request of a burst can leave late (connection setup, a busy event loop) while a later one leaves at
once, and the carrier counts arrivals, not our intentions.

`DailyQuota` counts requests per UTC day (the carriers that publish daily limits count that way)
and refuses with `QuotaExhausted` rather than sleeping until midnight.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from carriers.base import Clock


class QuotaExhausted(Exception):
    """The daily allowance is spent; `retry_after` is the number of seconds until it resets."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"daily request quota exhausted; resets in {retry_after:.0f} s")
        self.retry_after = retry_after


@runtime_checkable
class Limiter(Protocol):
    """Grants permission for one request. Waits if needed; raises `QuotaExhausted` if it never will today."""

    async def acquire(self) -> None: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


# Slack added to every one-second window: a request can reach the carrier later than it left our
# limiter (a busy event loop, a slow connect), and the carrier counts arrivals. Up to this much
# delay between two requests never puts rate + 1 arrivals in one of the carrier's seconds.
WINDOW_MARGIN = 0.2


class SlidingWindowLimiter:
    """At most `per_second` request starts in any one-second window (async, FIFO among waiters).

    Rates below 1/s become "one request per 1/rate seconds"; fractional rates above 1 are rounded
    down, because a window cannot hold half a request.
    """

    def __init__(
        self,
        per_second: float,
        *,
        margin: float = WINDOW_MARGIN,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError(f"per_second must be positive, got {per_second}")
        self.per_second = per_second
        self._burst = max(1, math.floor(per_second))
        self._window = 1.0 if per_second >= 1 else 1.0 / per_second
        self._margin = margin
        self._monotonic = monotonic
        self._sleep = sleep
        self._starts: deque[float] = deque(maxlen=self._burst)
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            if len(self._starts) == self._burst:
                wait = self._starts[0] + self._window + self._margin - self._monotonic()
                if wait > 0:
                    await self._sleep(wait)
            self._starts.append(self._monotonic())


class DailyQuota:
    """Counts requests per UTC calendar day and refuses the one past `per_day`."""

    def __init__(self, per_day: int, *, clock: Clock = _utc_now) -> None:
        if per_day <= 0:
            raise ValueError(f"per_day must be positive, got {per_day}")
        self.per_day = per_day
        self._clock = clock
        self._day: str = ""
        self._used = 0

    @property
    def used(self) -> int:
        """Requests counted today (UTC)."""
        self._roll()
        return self._used

    def take(self) -> None:
        """Count one request, or raise `QuotaExhausted` with the seconds left until UTC midnight."""
        now = self._roll()
        if self._used >= self.per_day:
            midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
            raise QuotaExhausted((midnight - now).total_seconds())
        self._used += 1

    def _roll(self) -> datetime:
        now = self._clock().astimezone(UTC)
        day = now.date().isoformat()
        if day != self._day:
            self._day, self._used = day, 0
        return now


class CarrierLimiter:
    """The in-process limiter an adapter gets by default: a per-second window plus an optional day quota."""

    def __init__(
        self,
        per_second: float,
        per_day: int | None = None,
        *,
        clock: Clock = _utc_now,
        margin: float = WINDOW_MARGIN,
    ) -> None:
        self.window = SlidingWindowLimiter(per_second, margin=margin)
        self.quota = DailyQuota(per_day, clock=clock) if per_day else None

    async def acquire(self) -> None:
        if self.quota is not None:
            self.quota.take()  # refuse before waiting: a spent quota will not recover in a second
        await self.window.acquire()


class Unlimited:
    """A limiter that never waits; for tests that are about something else."""

    async def acquire(self) -> None:
        return None
