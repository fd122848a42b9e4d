"""Per-carrier circuit breaker: a carrier that keeps failing is skipped for a while, not retried.

Without it, a carrier that is down costs every poll the full retry budget (attempts x backoff) for
every batch, and the poll job spends its time waiting on one broken API while parcels at healthy
carriers go unchecked. After `failure_threshold` consecutive failed calls the breaker *opens*: for
`cooldown` seconds `allow()` says no and the adapter answers `TemporaryFailure` at once. After the
cool-down one trial call is let through (*half-open*): success closes the breaker, failure opens it
again for another cool-down.

Time comes from the injected `Clock`, so tests and scenarios can move past a cool-down without
sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from carriers.base import Clock


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CircuitBreaker:
    """Counts consecutive failures of one carrier and opens after `failure_threshold` of them."""

    def __init__(
        self, *, failure_threshold: int = 5, cooldown: float = 60.0, clock: Clock = _utc_now
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: datetime | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= timedelta(seconds=self.cooldown):
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_after(self) -> float:
        """Seconds until a call will be let through again (0 when it would be now)."""
        if self._opened_at is None:
            return 0.0
        left = self.cooldown - (self._clock() - self._opened_at).total_seconds()
        return max(0.0, left)

    def allow(self) -> bool:
        """May a call go to the carrier now? In half-open state only one trial call at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def cancel_trial(self) -> None:
        """The call ended without telling us whether the carrier works (e.g. an alarm)."""
        self._trial_running = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._trial_running or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
        self._trial_running = False
