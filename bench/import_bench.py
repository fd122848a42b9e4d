"""Import benchmark: a generated 100,000-row CSV through `parcelwatch orders import`.

Prints rows per second for a first import (all new) and a re-import (all unchanged), and writes
the figures to bench/results/import.json. Target: at least 20,000 rows/s, i.e. 100k rows in 5 s.
Run: .venv/bin/python -m bench.import_bench [--rows N]
"""

from __future__ import annotations

import argparse
import random
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=FULL_ROWS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = root / "config.toml"
        config.write_text(
            (REPO / "config.toml")
            .read_text()
            .replace("sqlite:///parcelwatch.db", f"sqlite:///{root / 'bench.db'}")
        )
        csv = root / "orders.csv"
        write_csv(csv, args.rows)
        base = [sys.executable, "-m", "daemon", "--config", str(config)]
        subprocess.run([*base, "db", "upgrade"], check=True, capture_output=True)
        startup = run([*base, "config", "check"])
        first = run([*base, "orders", "import", str(csv)])
        again = run([*base, "orders", "import", str(csv)])
    figures = {
        "rows": args.rows,
        "process_startup_s": round(startup, 3),
        "first_import_s": round(first, 3),
        "first_import_rows_per_s": round(args.rows / first),
        "reimport_s": round(again, 3),
        "reimport_rows_per_s": round(args.rows / again),
        "target_rows_per_s": 20_000,
    }
    report("import", figures, full_size=args.rows == FULL_ROWS)


if __name__ == "__main__":
    main()
