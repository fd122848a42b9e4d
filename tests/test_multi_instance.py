"""Several daemons on one PostgreSQL database: three real `parcelwatch run` processes share the work
of thousands of orders over 100 simulated days; one is killed with SIGKILL halfway. Every message a
single daemon would have sent is received exactly once (or, for the one send cut by the kill, held
for review), none twice, and no carrier ever sees more than its configured global rate.

The daemons read a shared virtual clock from a file (`run --clock-file`); the test moves it one day
at a time once the daemons have done everything due, and moves the carrier emulators with it. The
reference is the single-daemon replay of the same scenario (`parcelwatch replay`, run alongside), stepped by the day.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, and_, func, or_, select

from carriers.numbers import s10_check_digit
from daemon.db import make_engine, upgrade
from daemon.importer import validate_record
from daemon.leases import OUTREACH, SHIPMENTS
from daemon.models import Order
from daemon.order_store import import_rows
from daemon.review import LogFilter, list_log
from daemon.sandbox import EMULATOR_ENV, sandbox_config, start_world
from daemon.simulate import ReplayScenario
from tests.conftest import SHIPPED_CONFIG

# The figure, run in CI (about 6 minutes on 2 cores); PARCELWATCH_MULTI_ORDERS=200 for a
# quick look.
ORDERS = int(os.environ.get("PARCELWATCH_MULTI_ORDERS", "5000"))
DAYS = 100
T0 = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)  # steps at noon UTC; events at 10:00
RATES = {"seventeentrack": 40.0, "correios": 20.0}  # configured global rates (emulators allow it)
DAY_LIMIT_S = 300  # a day's work that takes longer than this is a hang, not a slow machine
ORDERS_TABLE = Order.__table__  # type: ignore[attr-defined]


def _s10(serial: int, country: str, prefix: str) -> str:
    digits = f"{serial:08d}"
    return f"{prefix}{digits}{s10_check_digit(digits)}{country}"


# Fates chosen so that no event falls on, or next to, a stage day: the outcome does not depend on
# which daemon looked first within a day. Days are after shipment; events at 10:00 UTC.
FATES: dict[str, list[tuple[int, str]]] = {
    "early": [(1, "in_transit"), (5, "in_transit"), (8, "delivered")],
    "slow": [(1, "in_transit"), (10, "in_transit"), (22, "in_transit"), (36, "delivered")],
    "lost": [(1, "in_transit"), (5, "in_transit")],
}


def scenario(count: int) -> dict[str, Any]:
    rng = random.Random(7)
    orders, parcels = [], []
    for i in range(count):
        fate = rng.choices(["early", "slow", "lost"], weights=[70, 20, 10])[0]
        country = "BR" if i % 5 < 2 else "FR"
        number = (
            _s10(10_000_000 + i, "BR", "QQ")
            if country == "BR"
            else _s10(20_000_000 + i, "CN", "RR")
        )
        shipped = T0.replace(hour=0)
        orders.append({"order_id": f"M-{i:05d}", "buyer_name": f"Buyer {i}", "email": f"b{i}@example.com",
                       "locale": "pt-BR" if country == "BR" else "fr", "country": country,
                       "ship_date": shipped.date().isoformat(), "tracking_numbers": [number]})  # fmt: skip
        events = [{"at": (shipped + timedelta(days=d, hours=10)).isoformat(), "status": s,
                   "description": s.replace("_", " "), "location": country} for d, s in FATES[fate]]  # fmt: skip
        parcels.append({"number": number, "destination": country, "events": events})
    return {"start": T0.isoformat(), "until": (T0 + timedelta(days=DAYS)).isoformat(), "step_hours": 24,
            "approve": "none", "orders": orders, "parcels": parcels}  # fmt: skip


def config_text(world: Any, url: str) -> str:
    text = sandbox_config(
        SHIPPED_CONFIG.read_text(), world, url, poll_interval_seconds=0.1, decide_interval_seconds=0.1,
        send_interval_seconds=0.1, lease_seconds=43200, max_per_minute=600000,
        review_url='"https://shop.example/r/{order_id}"',
    )  # fmt: skip
    text = text.replace("quiet_hours = { start = 21:00:00, end = 08:00:00 }",
                        "quiet_hours = { start = 00:00:00, end = 00:00:00 }")  # fmt: skip
    for name, rate in RATES.items():
        text = text.replace(
            f"[carriers.{name}]\n", f"[carriers.{name}]\nrate_limit_per_second = {rate}\n"
        )
    return text


def busy(engine: Engine, now: datetime, dead: set[str]) -> int:
    """How much is due and not yet done at `now` (rows leased by a killed daemon wait for expiry)."""
    alive = or_(SHIPMENTS.c.lease_owner == "", SHIPMENTS.c.lease_owner.not_in(dead or {"-"}))
    with engine.connect() as conn:
        polls = conn.execute(select(func.count()).where(and_(
            SHIPMENTS.c.closed.is_(False), alive,
            or_(SHIPMENTS.c.next_check_at.is_(None), SHIPMENTS.c.next_check_at <= now)))).scalar_one()  # fmt: skip
        decides = conn.execute(
            select(func.count()).where(ORDERS_TABLE.c.decide_after <= now)
        ).scalar_one()
        sends = conn.execute(select(func.count()).where(or_(
            OUTREACH.c.state == "sending",
            and_(OUTREACH.c.state.in_(["planned", "approved"]), OUTREACH.c.due_at <= now,
                 or_(OUTREACH.c.next_attempt_at.is_(None), OUTREACH.c.next_attempt_at <= now)))))  # fmt: skip
        return int(polls) + int(decides) + int(sends.scalar_one())


@pytest.mark.timeout(1500)  # about 6 minutes on 2 cores; the suite's 300 s is for ordinary tests
def test_three_daemons_one_database_one_killed(
    pg_url: str, tmp_path: Path, figures: list[str]
) -> None:
    started = time.monotonic()
    data = scenario(ORDERS)
    loaded = ReplayScenario.from_dict(data, "multi-instance scenario")
    world = start_world(loaded.parcels, T0)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        engine = make_engine(pg_url)
        upgrade(engine)
        config = tmp_path / "config.toml"
        # The daemons' sessions do not wait for the WAL flush of each commit: what a daemon
        # committed survives its SIGKILL either way (the server keeps it); only a crash of the
        # server itself, not under test here, could lose the last commits.
        config.write_text(config_text(world, pg_url + "%20-csynchronous_commit%3Doff"))
        rows = [validate_record(i, o)[0] for i, o in enumerate(data["orders"], start=1)]
        import_rows(engine, [r for r in rows if r is not None], T0)
        clock = tmp_path / "clock"
        clock.write_text(T0.isoformat())
        env = {**os.environ, **EMULATOR_ENV}
        # The reference: the same scenario replayed by one daemon on its own SQLite file, emulators
        # and sink (`parcelwatch replay`), in its own process alongside the three.
        (tmp_path / "scenario.json").write_text(json.dumps(data))
        reference_out = (tmp_path / "reference.jsonl").open("w")
        procs["reference"] = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--config", str(config), "replay",
             str(tmp_path / "scenario.json"), "--workdir", str(tmp_path / "reference")],
            env=env, stdout=reference_out, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for name in ("d1", "d2", "d3"):
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "daemon", "--config", str(config), "run", "--instance", name,
                 "--clock-file", str(clock)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        dead: set[str] = set()
        slowest = (0.0, 0)
        for day in range(DAYS + 1):
            now = T0 + timedelta(days=day)
            world.set_clock(now)
            clock.write_text(now.isoformat())
            step_started = time.monotonic()
            # A day ends when nothing due is left undone. Moving the clock on earlier would let
            # the daemons decide on tracking a day behind the reference's, and compare nothing.
            while left := busy(engine, now, dead):
                waited = time.monotonic() - step_started
                assert waited < DAY_LIMIT_S, (
                    f"day {day}: {left} jobs still due after {waited:.0f} s"
                )
                time.sleep(0.1)  # each look is three counts: looking more often slows the daemons
            took = time.monotonic() - step_started
            slowest = max(slowest, (took, day))
            if os.environ.get("PARCELWATCH_MULTI_DEBUG"):
                print(day, round(took, 2), flush=True)
            if day == DAYS // 2:
                procs["d2"].send_signal(signal.SIGKILL)
                procs["d2"].wait(timeout=10)
                dead.add("d2")
        for name in ("d1", "d3"):
            procs[name].send_signal(signal.SIGTERM)
        codes = {name: procs[name].wait(timeout=60) for name in ("d1", "d3")}
        assert codes == {"d1": 0, "d3": 0}
        daemons_done = time.monotonic()
        assert procs["reference"].wait(timeout=DAY_LIMIT_S * 3) == 0
        reference_out.close()
        stats = {n: e.stats.snapshot() for n, e in world.carriers.emulators.items()}  # type: ignore[attr-defined]
        multi = list_log(engine, LogFilter())
        received = world.smtp.messages
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
        world.stop()
    multi_seconds = daemons_done - started
    waited_for_reference = time.monotonic() - daemons_done
    reference = [
        json.loads(line) for line in (tmp_path / "reference.jsonl").read_text().splitlines()
    ]
    # By trigger too (an order may get several promised updates). The promised updates themselves
    # are left out of the comparison: whether one is due, and on which date, follows from when
    # the message that promised it went out, which three daemons ticking on their own do not
    # time as the replay's steps do. They are counted with the rest for duplicates.
    expected = {
        (e["order_id"], e["kind"], e["trigger"])
        for e in reference
        if e["state"] == "sent" and e["channel"] == "email" and e["kind"] != "promised_update"
    }
    delivered = {
        (e.order_id, e.row.kind, e.row.trigger)
        for e in multi
        if e.row.state == "sent" and e.row.channel == "email"
    }
    sent_rows = len(delivered)
    delivered = {key for key in delivered if key[1] != "promised_update"}
    held = {(e.order_id, e.row.kind, e.row.trigger) for e in multi if e.row.state == "needs_review"}
    ids = Counter(m["Message-ID"] for m in received)
    duplicates = sum(n - 1 for n in ids.values())
    peaks = {name: int(s["peak_per_second"]) for name, s in stats.items()}
    figures.append(f"multi-instance: {ORDERS} orders, {DAYS} days, 3 daemons (one SIGKILLed on day {DAYS // 2}), "
          f"{multi_seconds:.0f} s, then {waited_for_reference:.0f} s more for the reference replay (slowest day: day {slowest[1]}, {slowest[0]:.1f} s)\n  messages expected {len(expected)}, received {len(received)}, "
          f"duplicates {duplicates}, held for review {len(held)}, missing {len(expected - delivered - held)}\n"
          f"  peak requests/s per carrier {peaks} (configured {RATES})")  # fmt: skip
    assert duplicates == 0
    assert len(received) == sent_rows
    assert expected - held == delivered - held, sorted(expected ^ delivered)[:10]
    assert len(held) <= 1  # at most the one send the killed daemon had in flight
    for name, rate in RATES.items():
        assert peaks[name] <= rate, (name, peaks[name])
