"""What every benchmark shares: the machine description, bulk data generation, peak RSS, results.

Data is inserted with SQLAlchemy core bulk inserts into a fresh SQLite file migrated by the real
`daemon.db.upgrade`: the benchmarks time the jobs, not the setup.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from carriers.numbers import s10_check_digit
from daemon.config import Config, load_config
from daemon.db import make_engine, upgrade
from daemon.leases import OUTREACH, SHIPMENTS
from daemon.logs import setup_logging
from daemon.models import Order, TrackingEvent
from daemon.sandbox import EMULATOR_ENV

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
# Where a run at another size than the writes its figures: a smoke test must not replace
# the committed full-size results (git ignores this folder).
SMALLER_RESULTS = RESULTS / "smaller"
SHIPPED_CONFIG = (REPO / "config.toml").read_text(encoding="utf-8")
ORDERS = Order.__table__  # type: ignore[attr-defined]
EVENTS = TrackingEvent.__table__  # type: ignore[attr-defined]
COUNTRIES = ["BR", "RU", "US", "FR", "ES", "DE", "IT", "PL", "MX", "CL"]
# The benches' virtual "now": noon UTC (the generated orders carry timezone UTC, so no quiet hours).
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
CHUNK = 20_000


def machine() -> dict[str, Any]:
    """nproc, CPU model, Python: printed and stored with every figure."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "sqlite": __import__("sqlite3").sqlite_version,
    }


def number(i: int) -> str:
    """A unique valid S10 number for index i (routed to 17TRACK: it ends in CN)."""
    serial = f"{i:08d}"
    return f"RR{serial}{s10_check_digit(serial)}CN"


def bench_config(
    folder: Path,
    database: Path,
    *,
    seventeentrack_url: str = "http://127.0.0.1:9/track/v2.2",
    smtp_port: int = 25,
    **daemon: Any,
) -> Config:
    """The shipped config pointed at the bench's database, 17TRACK emulator and SMTP sink, with
    Correios and Russian Post off (every generated number goes to 17TRACK anyway)."""
    text = SHIPPED_CONFIG.replace(
        'database_url = "sqlite:///parcelwatch.db"', f'database_url = "sqlite:///{database}"'
    )
    text = text.replace(
        'base_url = "https://api.17track.net/track/v2.2"', f'base_url = "{seventeentrack_url}"'
    )
    text = re.sub(r"(\[carriers\.(correios|russianpost)\]\nenabled = )true", r"\1false", text)
    text = text.replace('host = "127.0.0.1"\nport = 25', f'host = "127.0.0.1"\nport = {smtp_port}')
    for key, value in daemon.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    os.environ.update(EMULATOR_ENV)
    return load_config(path)


def daemon_logging() -> None:
    """Log as `parcelwatch run` does (info level, its text format and secret filter), into
    /dev/null: a job's log records are part of what it costs."""
    setup_logging("text", [])
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - open for the process


def fresh_database(path: Path) -> Engine:
    """A new SQLite file with the current schema."""
    if path.exists():
        path.unlink()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def _chunks(rows: Iterator[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert_orders(
    engine: Engine,
    count: int,
    *,
    decide_after: datetime | None,
    next_check_at: datetime | None,
    closed: bool = False,
    polled: bool = False,
    answered_at: datetime | None = None,
    events_per_shipment: int = 0,
    shipments_per_order: int = 1,
    seed: int = 42,
) -> None:
    """`count` open orders (ids 1..count) with `shipments_per_order` shipments each (ids
    1..count * shipments_per_order), shipped 1-60 days before NOW.

    `polled` marks shipments as polled (in transit) with `events_per_shipment` stored events: first
    answered at shipment, last at `answered_at` (default: at shipment too).
    """
    rng = random.Random(seed)
    shipped = [
        NOW - timedelta(days=1 + rng.randrange(60), hours=rng.randrange(24)) for _ in range(count)
    ]
    countries = [rng.choice(COUNTRIES) for _ in range(count)]

    def orders() -> Iterator[dict[str, Any]]:
        for i in range(count):
            yield {
                "id": i + 1, "order_id": f"B-{i:07d}", "source": "aliexpress",
                "buyer_name": f"Buyer {i}", "email": f"buyer{i}@example.com", "phone": "",
                "channel": "", "locale": "", "timezone": "UTC", "country": countries[i],
                "shipped_at": shipped[i], "promised_days": None, "product": f"Item {i % 97}",
                "quantity": 1, "state": "open", "state_reason": "", "customs_paused_days": 0,
                "created_at": shipped[i], "updated_at": shipped[i], "decide_after": decide_after,
            }  # fmt: skip

    def shipments() -> Iterator[dict[str, Any]]:
        for j in range(count * shipments_per_order):
            i = j // shipments_per_order
            yield {
                "id": j + 1, "order_pk": i + 1, "tracking_number": number(j), "carrier": "",
                "adapter": "seventeentrack", "status": "in_transit" if polled else "",
                "raw_status": "", "status_at": None,
                "last_event_at": shipped[i] + timedelta(days=1) if polled else None,
                "delivered_at": None, "first_polled_at": shipped[i] if polled else None,
                "last_polled_at": (answered_at or shipped[i]) if polled else None, "next_check_at": next_check_at,
                "closed": closed, "poll_error": "", "lease_owner": "", "lease_until": None,
                "lease_token": 0,
            }  # fmt: skip

    def events() -> Iterator[dict[str, Any]]:
        for j in range(count * shipments_per_order):
            i = j // shipments_per_order
            for k in range(events_per_shipment):
                yield {
                    "shipment_id": j + 1, "event_key": f"bench-{k}",
                    "occurred_at": shipped[i] + timedelta(days=1 + k),
                    "status": "in_transit", "raw_code": "InTransit_Other",
                    "description": "Departed from sorting center", "location": "SHENZHEN",
                    "source": "China Post", "recorded_at": shipped[i] + timedelta(days=1 + k),
                }  # fmt: skip

    with engine.begin() as conn:
        for batch in _chunks(orders()):
            conn.execute(insert(ORDERS), batch)
        for batch in _chunks(shipments()):
            conn.execute(insert(SHIPMENTS), batch)
        for batch in _chunks(events()):
            conn.execute(insert(EVENTS), batch)


def insert_outreach(engine: Engine, count: int, due_at: datetime, state: str = "planned") -> None:
    """`count` buyer email rows in `state`, one per order 1..count (tracking updates)."""

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(count):
            yield {
                "order_pk": i + 1, "kind": "tracking_update", "trigger": "stage", "audience": "buyer",
                "channel": "email", "state": state, "reason": "bench", "tracking_snapshot": "{}",
                "needs_approval": False, "due_at": due_at, "created_at": due_at,
                "updated_at": due_at, "decided_by": "", "decided_at": None, "decision_note": "",
                "locale": "", "subject": "", "body_text": "", "message_id": "", "attempts": 0,
                "next_attempt_at": None, "last_error": "",
                "sent_at": due_at if state == "sent" else None, "lease_owner": "",
                "lease_until": None, "lease_token": 0,
            }  # fmt: skip

    with engine.begin() as conn:
        for batch in _chunks(rows()):
            conn.execute(insert(OUTREACH), batch)


class PeakRss:
    """The highest resident set size of this process while the block runs (sampled every 10 ms,
    and the kernel's high-water mark after resetting it, where /proc allows)."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._hwm_reset = False

    @staticmethod
    def _status(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self._status("VmRSS"))
            self._stop.wait(0.01)

    def __enter__(self) -> PeakRss:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self._hwm_reset = True
        except OSError:
            pass
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._hwm_reset:
            self.peak_kb = max(self.peak_kb, self._status("VmHWM"))

    @property
    def mb(self) -> float:
        return round(self.peak_kb / 1024, 1)


def start_process(args: list[str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start a helper process that prints one JSON line when ready; returns it and that line."""
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError(f"helper {args} exited with {proc.returncode} before it was ready")
    return proc, json.loads(line)


def stop_process(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def report(name: str, figures: dict[str, Any], *, full_size: bool) -> dict[str, Any]:
    """Print the figures and write them, with the machine, to bench/results/<name>.json for a run
    at the issue's size, else to bench/results/smaller/<name>.json."""
    figures = {
        **figures,
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for key, value in figures.items():
        print(f"{key:>34}: {value}")
    folder = RESULTS if full_size else SMALLER_RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures
