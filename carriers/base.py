"""What every carrier adapter promises: results per number, declared limits, errors a caller can act on.

An adapter turns "these tracking numbers" into one result per number. It knows HTTP, auth, batching,
rate limits, retries and its carrier's codes, and nothing of orders, windows or buyers.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from carriers.status import Status

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware UTC. Injected so emulators and tests run on virtual time."""


@dataclass(frozen=True)
class TrackEvent:
    """One carrier event, normalised, with the carrier's own code and words kept beside it."""

    occurred_at: datetime  # aware, UTC
    status: Status
    raw_code: str
    description: str
    location: str = ""
    source: str = ""  # which leg or provider reported it, e.g. "China Post", "Correios"


@dataclass(frozen=True)
class Tracked:
    """The carrier knows the number: its current status and its events, newest first."""

    number: str
    status: Status
    raw_status: str
    events: tuple[TrackEvent, ...]
    carrier: str = ""


@dataclass(frozen=True)
class NotFound:
    """The carrier has no information on the number (yet); normal in the first days."""

    number: str
    detail: str = ""


@dataclass(frozen=True)
class InvalidNumber:
    """The carrier rejects the number's format: it will never be found as written."""

    number: str
    detail: str = ""


@dataclass(frozen=True)
class TemporaryFailure:
    """This number could not be checked now (timeout, 5xx, carrier busy); try again later."""

    number: str
    detail: str
    retry_after: float | None = None  # seconds, when the carrier said


TrackResult = Tracked | NotFound | InvalidNumber | TemporaryFailure


class CarrierAlarm(Exception):
    """Something only a person can fix: bad credentials, quota exhausted, account disabled.

    Raised instead of retrying: a retry loop on a revoked key burns quota and hides the problem.
    """

    def __init__(self, carrier: str, reason: str) -> None:
        super().__init__(f"{carrier}: {reason}")
        self.carrier = carrier
        self.reason = reason


@dataclass(frozen=True)
class RateLimit:
    """A carrier's documented limits; an adapter never exceeds them."""

    per_second: float
    per_day: int | None = None


@dataclass(frozen=True)
class AdapterSettings:
    """What an adapter needs from configuration. Secrets are values here, never logged."""

    base_url: str
    api_key: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    rate_limit_per_second: float | None = None  # may lower the documented limit, never raise it
    daily_limit: int | None = None
    timeout_seconds: float = 30.0


class Adapter(abc.ABC):
    """A tracking API. Subclasses declare `name`, `batch_size` and `rate_limit`."""

    name: str
    batch_size: int
    rate_limit: RateLimit

    @abc.abstractmethod
    async def track(self, numbers: Sequence[str]) -> list[TrackResult]:
        """One result per number, in any order. Raises CarrierAlarm for operator-level failures."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the HTTP client."""
