"""Idle-tick benchmark: N shipments (default 1,000,000; two per order), none due, and one scheduler
tick: poll, decide and send `run_once` with nothing to do.

Shipments wait for their next check (a tenth are closed), orders for their next decision, and the
outreach log holds one sent message per order. Figures: the median and worst of 20 ticks, each
job's share, against the raw limit: the three "is anything due?" questions asked with the bare
sqlite3 module on the same file. Target: a tick under 50 ms.
Run: .venv/bin/python -m bench.idle_bench [--shipments N]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from bench.common import (
    NOW,
    SHIPMENTS,
    bench_config,
    daemon_logging,
    fresh_database,
    insert_orders,
    insert_outreach,
    report,
)
from daemon.db import make_engine
from daemon.wiring import build_runtime

TICKS = 20


FULL_SHIPMENTS = 1_000_000  # the size (other sizes: bench/results/smaller)


def raw_questions(database: Path) -> float:
    """Seconds for the three due-questions in their simplest indexed form, with sqlite3."""
    now = NOW.replace(tzinfo=None).isoformat(sep=" ")
    with sqlite3.connect(database) as conn:
        start = time.perf_counter()
        conn.execute(
            "SELECT id FROM shipments WHERE closed = 0 AND next_check_at <= ? LIMIT 1", (now,)
        ).fetchall()
        conn.execute("SELECT id FROM orders WHERE decide_after <= ? LIMIT 1", (now,)).fetchall()
        conn.execute(
            "SELECT id FROM outreach WHERE state IN ('planned', 'approved') AND due_at <= ? LIMIT 1",
            (now,),
        ).fetchall()
        return time.perf_counter() - start


async def ticks(folder: Path, database: Path) -> dict[str, list[float]]:
    config = bench_config(folder, database)
    engine = make_engine(f"sqlite:///{database}")
    runtime = build_runtime(config, engine, lambda: NOW, owner="bench", carrier_limits=False)
    times: dict[str, list[float]] = {"poll": [], "decide": [], "send": [], "tick": []}
    for _ in range(TICKS):
        start = time.perf_counter()
        polled = await runtime.poller.run_once()
        t1 = time.perf_counter()
        decided = await runtime.decider.run_once()
        t2 = time.perf_counter()
        sent = await runtime.sender.run_once()
        t3 = time.perf_counter()
        assert polled.claimed == 0 and decided.orders == 0 and sent.sent == 0
        times["poll"].append(t1 - start)
        times["decide"].append(t2 - t1)
        times["send"].append(t3 - t2)
        times["tick"].append(t3 - start)
    await runtime.close()
    engine.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shipments", type=int, default=FULL_SHIPMENTS)
    args = parser.parse_args()
    daemon_logging()
    orders = args.shipments // 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        database = folder / "idle.db"
        setup = time.perf_counter()
        engine = fresh_database(database)
        insert_orders(engine, orders, decide_after=NOW + timedelta(hours=20),
                      next_check_at=NOW + timedelta(hours=6), polled=True,
                      shipments_per_order=2)  # fmt: skip
        with engine.begin() as conn:
            conn.execute(update(SHIPMENTS).where(SHIPMENTS.c.id % 10 == 0).values(closed=True))
        insert_outreach(engine, orders, NOW - timedelta(days=3), state="sent")
        engine.dispose()
        setup = time.perf_counter() - setup
        raw = min(raw_questions(database) for _ in range(5))
        times = asyncio.run(ticks(folder, database))
    ms = {k: [v * 1000 for v in vs] for k, vs in times.items()}
    tick = statistics.median(ms["tick"])
    figures: dict[str, Any] = {
        "shipments": orders * 2,
        "orders": orders,
        "setup_s": round(setup, 1),
        "ticks": TICKS,
        "tick_median_ms": round(tick, 2),
        "tick_max_ms": round(max(ms["tick"]), 2),
        "poll_median_ms": round(statistics.median(ms["poll"]), 2),
        "decide_median_ms": round(statistics.median(ms["decide"]), 2),
        "send_median_ms": round(statistics.median(ms["send"]), 2),
        "raw_sqlite_questions_ms": round(raw * 1000, 3),
        "target_tick_ms": 50,
    }
    report("idle", figures, full_size=args.shipments == FULL_SHIPMENTS)


if __name__ == "__main__":
    main()
