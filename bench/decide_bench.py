"""Decide benchmark: one pass of the decide job over N open orders (default 200,000), all due.

Each order has one shipment, in transit, with two stored events and a carrier answer 6 h old,
shipped 1-60 days ago in one of ten countries, so the pass plans a realistic mix of messages.
Figures: orders per second of `Decider.run_once` as the daemon runs it (worker processes per
`daemon.decide_processes`, one per CPU by default), the same pass on a fresh copy in one process,
and the raw limit: reading the same orders, shipments and events with the bare sqlite3 module (no
policy, no writes).

Target, per core: the one-process pass may take at most 25% longer than the code before the
readable policy (commit dac6804) measured back to back on the same machine; run this bench in a
checkout of that commit first and pass its one-process figure as `--baseline-s`.
Run: .venv/bin/python -m bench.decide_bench [--orders N] [--baseline-s SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.common import NOW, bench_config, daemon_logging, fresh_database, insert_orders, report
from daemon.config import Config
from daemon.db import make_engine
from daemon.decide import Decider, DecideReport
from daemon.fanout import process_count

FULL_ORDERS = 200_000  # the size (other sizes: bench/results/smaller)


def raw_read(database: Path) -> float:
    """Seconds to read every row the pass reads, with sqlite3 and nothing else."""
    start = time.perf_counter()
    with sqlite3.connect(database) as conn:
        for table in ("orders", "shipments", "tracking_events"):
            for _ in conn.execute(f"SELECT * FROM {table}"):
                pass
    return time.perf_counter() - start


def timed_pass(
    database: Path, config: Config, processes: int | None
) -> tuple[float, DecideReport, int]:
    """Seconds for one `run_once` over `database`, its report and the worker processes used."""
    engine = make_engine(f"sqlite:///{database}")
    decider = Decider(engine, config, lambda: NOW, processes=processes)
    start = time.perf_counter()
    result = asyncio.run(decider.run_once())
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed, result, process_count(decider.configured_processes())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=FULL_ORDERS)
    parser.add_argument(
        "--baseline-s",
        type=float,
        default=None,
        help="the old code's one-process pass, measured just before on this machine",
    )
    args = parser.parse_args()
    daemon_logging()
    count = args.orders
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        database = folder / "decide.db"
        setup = time.perf_counter()
        engine = fresh_database(database)
        # Watched as the poll job watches them: last answered 6 h ago, next check in 6 h (an
        # answer older than a stage's day would have policy F1-F2 hold or annotate the stage).
        insert_orders(engine, count, decide_after=NOW - timedelta(minutes=5),
                      next_check_at=NOW + timedelta(hours=6), polled=True,
                      answered_at=NOW - timedelta(hours=6), events_per_shipment=2)  # fmt: skip
        engine.dispose()
        setup = time.perf_counter() - setup
        raw = raw_read(database)
        copy = folder / "decide-one.db"
        shutil.copy(database, copy)
        config = bench_config(folder, database)
        elapsed, result, processes = timed_pass(database, config, None)
        one_elapsed, one_result, _ = timed_pass(copy, config, 1)
    assert result.orders == count, f"decided {result.orders} of {count}"
    assert one_result == result, "one process decided otherwise than several"
    report(
        "decide",
        {
            "orders": count,
            "setup_s": round(setup, 1),
            "decide_pass_s": round(elapsed, 2),
            "decide_orders_per_s": round(count / elapsed),
            "processes": processes,
            "one_process_pass_s": round(one_elapsed, 2),
            "planned": result.planned,
            "skipped": result.skipped,
            "by_kind": dict(result.by_kind),
            "raw_sqlite_read_s": round(raw, 2),
            "raw_orders_per_s": round(count / raw),
            "ratio": round(raw / elapsed, 3),
            "one_process_orders_per_s": round(count / one_elapsed),
            "baseline_one_process_pass_s": args.baseline_s,
            "target_one_process_pass_s": round(args.baseline_s * 1.25, 2)
            if args.baseline_s
            else None,
        },
        full_size=count == FULL_ORDERS,
    )


if __name__ == "__main__":
    main()
