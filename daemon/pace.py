"""A carrier's rate limit shared by every daemon on one database.

Each request reserves the next free slot of its carrier in one atomic UPDATE: the slot is the later of
"now" and the carrier's `next_at`, and `next_at` moves one spacing (1 / rate) past it. Whoever
reserves a slot waits until it comes, so however many daemons run, request starts for one carrier
are at least one spacing apart. The daily count lives in the same row and is checked in the same
statement. It implements the `carriers.ratelimit.Limiter` protocol, so adapters do not know where
their limit is kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, case, func, update
from sqlalchemy.dialects import postgresql, sqlite

from carriers.ratelimit import WINDOW_MARGIN, QuotaExhausted
from daemon.db import session_scope
from daemon.models import CarrierPace

PACE = CarrierPace.__table__  # type: ignore[attr-defined]


class DatabaseLimiter:
    def __init__(
        self,
        engine: Engine,
        carrier: str,
        per_second: float,
        per_day: int | None = None,
        *,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError(f"per_second must be positive, got {per_second}")
        self.engine = engine
        self.carrier = carrier
        # `rate` starts spread over a second and its margin, as the in-process limiter does.
        self.spacing = (1 + WINDOW_MARGIN) / per_second
        self.per_day = per_day
        self._wall = wall
        self._sleep = sleep
        self._ensure_row()

    def _ensure_row(self) -> None:
        dialect = self.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        with session_scope(self.engine) as session:
            session.execute(
                insert(PACE)
                .values(carrier=self.carrier, next_at=0.0, day="", used=0)
                .on_conflict_do_nothing(index_elements=["carrier"])
            )

    def reserve(self) -> float:
        """Reserve the next slot (Unix time); raises QuotaExhausted when today's count is spent."""
        now = self._wall()
        today = datetime.fromtimestamp(now, UTC).date().isoformat()
        later = func.greatest if self.engine.dialect.name == "postgresql" else func.max
        statement = (
            update(PACE)
            .where(PACE.c.carrier == self.carrier)
            .values(
                next_at=later(PACE.c.next_at, now) + self.spacing,
                used=case((PACE.c.day == today, PACE.c.used + 1), else_=1),
                day=today,
            )
            .returning(PACE.c.next_at)
        )
        if self.per_day is not None:
            statement = statement.where((PACE.c.day != today) | (PACE.c.used < self.per_day))
        with session_scope(self.engine) as session:
            next_at = session.execute(statement).scalar_one_or_none()
        if next_at is None:
            midnight = datetime.fromisoformat(today).replace(tzinfo=UTC) + timedelta(days=1)
            raise QuotaExhausted(midnight.timestamp() - now)
        return float(next_at) - self.spacing

    async def acquire(self) -> None:
        slot = self.reserve()
        wait = slot - self._wall()
        if wait > 0:
            await self._sleep(wait)
