"""Print every benchmark's headline figure with its raw limit, ratio and target, from
bench/results/*.json; `--markdown` prints the README table instead.
Run: .venv/bin/python -m bench.summary [--markdown]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import RESULTS, SMALLER_RESULTS

# name -> (what, figure, raw limit, ratio or None, target text, met?)
Row = tuple[str, str, str, str, str, bool]


def _poll(r: dict[str, Any]) -> list[Row]:
    return [
        (f"Poll: full cycle, {r['shipments']:,} shipments, 17TRACK emulator",
         f"{r['poll_shipments_per_s']:,} shipments/s ({r['poll_cycle_s']} s)",
         f"{r['raw_shipments_per_s']:,}/s bare httpx", f"{r['ratio']:.2f}", "ratio ≥ 0.5",
         r["ratio"] >= 0.5),
        (f"Memory: peak RSS during the {r['shipments']:,} poll cycle", f"{r['peak_rss_mb']} MB",
         "", "", "< 250 MB", r["peak_rss_mb"] < 250),
    ]  # fmt: skip


def _decide(r: dict[str, Any]) -> list[Row]:
    """Per core: the one-process pass against the old code's, measured back to back."""
    target = r.get("target_one_process_pass_s")
    baseline = r.get("baseline_one_process_pass_s")
    return [
        (f"Decide: one pass, {r['orders']:,} open orders, one process",
         f"{r.get('one_process_orders_per_s', '?'):,} orders/s ({r['one_process_pass_s']} s; "
         f"{r['decide_pass_s']} s with {r.get('processes', 1)} worker processes)",
         f"{r['raw_orders_per_s']:,}/s bare sqlite3 read",
         f"{r['raw_sqlite_read_s'] / r['one_process_pass_s']:.2f}",
         f"≤ {target} s (old code {baseline} s + 25%)" if target else "old code + 25%",
         bool(target) and r["one_process_pass_s"] <= target),
    ]  # fmt: skip


def _send(r: dict[str, Any]) -> list[Row]:
    return [
        (f"Send: {r['messages']:,} emails into aiosmtpd",
         f"{r['send_messages_per_s']:,} messages/s ({r['send_s']} s)",
         f"{r['raw_messages_per_s']:,}/s bare aiosmtplib", f"{r['ratio']:.2f}", "ratio ≥ 0.7",
         r["ratio"] >= 0.7),
    ]  # fmt: skip


def _import(r: dict[str, Any]) -> list[Row]:
    return [
        (f"Import: {r['rows']:,}-row CSV (CLI, new orders)",
         f"{r['first_import_rows_per_s']:,} rows/s ({r['first_import_s']} s, median of "
         f"{len(r.get('first_import_runs_s', [0]))}; re-import {r['reimport_rows_per_s']:,}/s; "
         f"startup {r['process_startup_s']} s)",
         f"{r['raw_rows_per_s']:,}/s bare csv + sqlite3" if "raw_rows_per_s" in r else "",
         f"{r['ratio']:.2f}" if "ratio" in r else "",
         "≥ 20,000 rows/s", r["first_import_rows_per_s"] >= 20_000),
    ]  # fmt: skip


def _idle(r: dict[str, Any]) -> list[Row]:
    return [
        (f"Idle tick: {r['shipments']:,} shipments, none due",
         f"{r['tick_median_ms']} ms median, {r['tick_max_ms']} ms worst of {r['ticks']}",
         f"{r['raw_sqlite_questions_ms']} ms bare sqlite3 due-queries", "", "< 50 ms",
         r["tick_median_ms"] < 50),
    ]  # fmt: skip


BENCHES: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "poll": _poll, "decide": _decide, "send": _send, "import": _import, "idle": _idle,
}  # fmt: skip


def rows(folder: Path = RESULTS) -> tuple[list[Row], dict[str, Any]]:
    out: list[Row] = []
    machine: dict[str, Any] = {}
    for name, render in BENCHES.items():
        path = folder / f"{name}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        machine = result.get("machine", machine)
        out += render(result)
    return out, machine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--smaller", action="store_true", help="the runs at another size")
    args = parser.parse_args()
    table, machine = rows(SMALLER_RESULTS if args.smaller else RESULTS)
    if args.markdown:
        print("| benchmark | figure | raw limit (same run) | ratio | target | met |")
        print("|---|---|---|---|---|---|")
        for what, figure, raw, ratio, target, met in table:
            print(f"| {what} | {figure} | {raw} | {ratio} | {target} | {'yes' if met else 'no'} |")
        print(f"\nMachine: {machine.get('nproc')} CPUs ({machine.get('cpu')}), Python "
              f"{machine.get('python')}, SQLite {machine.get('sqlite')}.")  # fmt: skip
        return
    for what, figure, raw, ratio, target, met in table:
        print(f"{'MET ' if met else 'MISS'}  {what}")
        print(f"      {figure}" + (f"  vs  {raw}" if raw else "") + (f"  ratio {ratio}" if ratio else "")
              + f"  target {target}")  # fmt: skip
    print(f"machine: {machine}")


if __name__ == "__main__":
    main()
