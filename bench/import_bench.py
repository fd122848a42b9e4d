"""Import benchmark: a generated 100,000-row CSV through `parcelwatch orders import`.

Prints rows per second for a first import (all new) and a re-import (all unchanged), each the
median of three runs (a first import on a fresh copy of the empty database each time), and the
raw limit: the fastest of three runs of `bench/raw_import.py`, the same file into the same tables
with nothing but csv and sqlite3. Writes the figures to bench/results/import.json. Target: at
least 20,000 rows/s, i.e. 100k rows in 5 s.
Run: .venv/bin/python -m bench.import_bench [--rows N]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import report
from carriers.numbers import s10_check_digit

REPO = Path(__file__).resolve().parent.parent
COUNTRIES = ["BR", "RU", "US", "FR", "ES", "DE", "IT", "PL", "MX", "CL"]


FULL_ROWS = 100_000  # the size (other sizes: bench/results/smaller)


def s10(rng: random.Random, country: str) -> str:
    serial = f"{rng.randrange(10**8):08d}"
    return f"RR{serial}{s10_check_digit(serial)}{country}"


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(42)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(
            "order_id,source,buyer_name,email,locale,country,ship_date,tracking_numbers,product,quantity\n"
        )
        for i in range(rows):
            country = rng.choice(COUNTRIES)
            day = 1 + rng.randrange(28)
            fh.write(
                f"B-{i:07d},aliexpress,Buyer {i},buyer{i}@example.com,,{country},"
                f"2026-10-{day:02d},{s10(rng, 'CN')},Item {i % 97},1\n"
            )


def run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


RUNS = 3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=FULL_ROWS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = root / "config.toml"
        database = root / "bench.db"
        config.write_text(
            (REPO / "config.toml")
            .read_text()
            .replace("sqlite:///parcelwatch.db", f"sqlite:///{database}")
        )
        csv = root / "orders.csv"
        write_csv(csv, args.rows)
        base = [sys.executable, "-m", "daemon", "--config", str(config)]
        subprocess.run([*base, "db", "upgrade"], check=True, capture_output=True)
        empty = root / "empty.db"
        shutil.copy(database, empty)
        startup = run([*base, "config", "check"])
        raw, first = [], []
        for _ in range(RUNS):  # alternately, so a drift of the machine touches both alike
            raw.append(run([sys.executable, str(REPO / "bench" / "raw_import.py"), str(csv),
                            str(_fresh(empty, root / "raw.db"))]))  # fmt: skip
            _fresh(empty, database)
            first.append(run([*base, "orders", "import", str(csv)]))
        again = [run([*base, "orders", "import", str(csv)]) for _ in range(RUNS)]
    first_s, again_s, raw_s = statistics.median(first), statistics.median(again), min(raw)
    figures = {
        "rows": args.rows,
        "process_startup_s": round(startup, 3),
        "first_import_s": round(first_s, 3),
        "first_import_runs_s": [round(t, 3) for t in first],
        "first_import_rows_per_s": round(args.rows / first_s),
        "reimport_s": round(again_s, 3),
        "reimport_rows_per_s": round(args.rows / again_s),
        "raw_import_runs_s": [round(t, 3) for t in raw],
        "raw_rows_per_s": round(args.rows / raw_s),
        "ratio": round(raw_s / first_s, 3),
        "target_rows_per_s": 20_000,
    }
    report("import", figures, full_size=args.rows == FULL_ROWS)


def _fresh(empty: Path, database: Path) -> Path:
    """`database` as the empty, upgraded one (its WAL files gone with the old content)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copy(empty, database)
    return database


if __name__ == "__main__":
    main()
