"""Poll benchmark: one full poll cycle over N open shipments (default 100,000) on SQLite through the
17TRACK emulator, 40 numbers per call, carrier rate limits lifted (`carrier_limits=False`).

Figures: shipments per second of the real `Poller` (run_once until nothing is left to claim),
against the raw limit: a bare httpx loop making the same batched `gettrackinfo` calls to the same
emulator with no database (the better of a run before and a run after the cycle). Target ratio at
least 0.5. Also the peak RSS of this process during the cycle (target under 250 MB).
Run: .venv/bin/python -m bench.poll_bench [--shipments N]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    NOW,
    PeakRss,
    bench_config,
    daemon_logging,
    fresh_database,
    insert_orders,
    number,
    report,
    start_process,
    stop_process,
)
from daemon.db import make_engine
from daemon.poll import PollReport
from daemon.sandbox import EMULATOR_ENV
from daemon.wiring import build_runtime

FULL_SHIPMENTS = 100_000  # the size (other sizes: bench/results/smaller)

BATCH = 40


async def raw_loop(url: str, count: int) -> float:
    """Seconds for the same batched calls with a bare httpx client and no database."""
    numbers = [number(i) for i in range(count)]
    headers = {"17token": EMULATOR_ENV["PARCELWATCH_17TRACK_KEY"]}
    async with httpx.AsyncClient(timeout=30) as client:
        start = time.perf_counter()
        for i in range(0, count, BATCH):
            body = [{"number": n} for n in numbers[i : i + BATCH]]
            response = await client.post(f"{url}/gettrackinfo", json=body, headers=headers)
            data = response.json()
            assert len(data["data"]["accepted"]) == len(body), data
        return time.perf_counter() - start


async def poll_cycle(folder: Path, database: Path, url: str) -> tuple[float, PollReport, int]:
    config = bench_config(folder, database, seventeentrack_url=url)
    engine = make_engine(f"sqlite:///{database}")
    runtime = build_runtime(config, engine, lambda: NOW, owner="bench", carrier_limits=False)
    total = PollReport()
    runs = 0
    start = time.perf_counter()
    while True:
        one = await runtime.poller.run_once()
        runs += 1
        if not one.claimed:
            break
        total.claimed += one.claimed
        total.checked += one.checked
        total.new_events += one.new_events
        for name, failed in one.failures.items():
            total.failures[name] = total.failures.get(name, 0) + failed
    elapsed = time.perf_counter() - start
    await runtime.close()
    engine.dispose()
    return elapsed, total, runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shipments", type=int, default=FULL_SHIPMENTS)
    args = parser.parse_args()
    daemon_logging()
    count = args.shipments
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        database = folder / "poll.db"
        setup = time.perf_counter()
        engine = fresh_database(database)
        insert_orders(engine, count, decide_after=None, next_check_at=NOW - timedelta(hours=1),
                      polled=True)  # fmt: skip
        engine.dispose()
        emulator, info = start_process(
            ["bench/emulator_proc.py", "--parcels", str(count), "--now", NOW.isoformat()]
        )
        setup = time.perf_counter() - setup
        try:
            raw_before = asyncio.run(raw_loop(info["url"], count))
            with PeakRss() as rss:
                elapsed, total, runs = asyncio.run(poll_cycle(folder, database, info["url"]))
            raw_after = asyncio.run(raw_loop(info["url"], count))
        finally:
            stop_process(emulator)
    raw = min(raw_before, raw_after)
    assert total.claimed == count, f"claimed {total.claimed} of {count}"
    figures: dict[str, Any] = {
        "shipments": count,
        "setup_s": round(setup, 1),
        "poll_cycle_s": round(elapsed, 2),
        "poll_shipments_per_s": round(count / elapsed),
        "poll_run_once_calls": runs,
        "checked": total.checked,
        "new_events": total.new_events,
        "failures": total.failures,
        "raw_httpx_s": round(raw, 2),
        "raw_httpx_runs_s": [round(raw_before, 2), round(raw_after, 2)],
        "raw_shipments_per_s": round(count / raw),
        "ratio": round(raw / elapsed, 3),
        "target_ratio": 0.5,
        "peak_rss_mb": rss.mb,
        "target_peak_rss_mb": 250,
    }
    report("poll", figures, full_size=args.shipments == FULL_SHIPMENTS)


if __name__ == "__main__":
    main()
