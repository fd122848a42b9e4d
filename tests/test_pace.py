"""A carrier's rate limit kept in the database, shared by every daemon (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from carriers.ratelimit import QuotaExhausted
from daemon.db import make_engine, upgrade
from daemon.pace import DatabaseLimiter

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()


def test_two_daemons_share_one_pace(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pw.db'}"
    upgrade(make_engine(url))
    a = DatabaseLimiter(make_engine(url), "seventeentrack", 3, wall=lambda: NOON)
    b = DatabaseLimiter(make_engine(url), "seventeentrack", 3, wall=lambda: NOON)
    other = DatabaseLimiter(make_engine(url), "correios", 2, wall=lambda: NOON)
    slots = [lim.reserve() for lim in (a, b, a, b, a, b)]
    assert slots == sorted(slots)
    gaps = [later - earlier for earlier, later in pairwise(slots)]
    assert all(gap >= 1 / 3 for gap in gaps)
    assert other.reserve() == NOON  # another carrier has a pace of its own


def test_the_daily_quota_is_shared_and_resets_at_utc_midnight(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pw.db'}"
    upgrade(make_engine(url))
    now = [NOON]
    a = DatabaseLimiter(make_engine(url), "russianpost", 1000, per_day=3, wall=lambda: now[0])
    b = DatabaseLimiter(make_engine(url), "russianpost", 1000, per_day=3, wall=lambda: now[0])
    a.reserve()
    b.reserve()
    a.reserve()
    with pytest.raises(QuotaExhausted) as refused:
        b.reserve()
    assert refused.value.retry_after == 12 * 3600
    now[0] = NOON + 13 * 3600  # 01:00 the next day
    b.reserve()


def _worker(url: str, count: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    limiter = DatabaseLimiter(make_engine(url), "seventeentrack", 50)
    out.put([limiter.reserve() for _ in range(count)])


def test_three_processes_on_postgresql_never_share_a_slot(pg_url: str) -> None:
    upgrade(make_engine(pg_url))
    queue: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_worker, args=(pg_url, 40, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    slots = sorted(s for _ in procs for s in queue.get(timeout=60))
    for p in procs:
        p.join(timeout=30)
    assert len(slots) == 120
    gaps = [later - earlier for earlier, later in pairwise(slots)]
    assert min(gaps) >= 1 / 50 - 1e-9
