"""Clocks. Everything that decides takes a clock, so scenarios replay on virtual time.

`SystemClock` is the wall clock. `VirtualClock` stands still until moved (tests, replay).
`AcceleratedClock` runs from a start instant at a multiple of real time (the demo: one day a second).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> datetime: ...


class SystemClock:
    def __call__(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a clock's time must be timezone-aware")
        self._now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError(f"time only moves forward ({moment} < {self._now})")
        self._now = moment.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        self.set(self._now + delta)
        return self._now


class AcceleratedClock:
    """`speed` virtual seconds pass per real second (86400: a day a second)."""

    def __init__(self, start: datetime, speed: float) -> None:
        self.start = start.astimezone(UTC)
        self.speed = speed
        self._origin = time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._origin) * self.speed)


class FileClock:
    """Reads "now" (ISO 8601) from a file that another process moves forward.

    For simulations of several daemon processes sharing one virtual clock (`run --clock-file`);
    never for production. The file is re-read only when it changes.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp = -1
        self._now = datetime.min.replace(tzinfo=UTC)

    def __call__(self) -> datetime:
        import os

        stamp = os.stat(self.path).st_mtime_ns
        if stamp != self._stamp:
            with open(self.path, encoding="utf-8") as fh:
                text = fh.read().strip()
            if text:
                self._now = datetime.fromisoformat(text).astimezone(UTC)
                self._stamp = stamp
        return self._now
