"""Crash trials: kill the daemon's jobs at seeded points, restart them, and check what survived.

A trial runs the real poll, decide and send jobs (`tests.reliability.driver`, a child process) on a
virtual clock against the carrier emulators and an SMTP sink that live in this process, so they see
everything the child did before it died. The child is killed one to three times, either by
`os._exit` at a named point (before or after a database commit in poll, decide or send, at a send
job crash point, or inside the SMTP conversation) or by SIGKILL from here after a random delay, and
restarted from the step it was on, as systemd would restart `parcelwatch run`. At the end:

* no message reached the sink twice (counted by Message-ID);
* every message the same scenario sends without kills was sent, or is in `needs_review`
  (its fate unknown after a kill mid-send: a person decides), or waits because it follows such a
  send (a refund offer's follow-up, the update a message promised, a review request: decided once
  staff settle it), and no row is stuck in `sending`;
* every tracking event the uninterrupted run stored is stored;
* the database passes `PRAGMA integrity_check`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.db import make_engine, upgrade
from daemon.importer import validate_record
from daemon.order_store import import_rows
from daemon.sandbox import EMULATOR_ENV, World, start_world
from daemon.simulate import ReplayScenario

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "daemon" / "samples" / "demo_scenario.json"
START = datetime(2026, 8, 20, tzinfo=UTC)
STEP_HOURS = 12
DELIVERED = ("sent", "manual_pending")
ACCEPTABLE = (*DELIVERED, "needs_review")
CATEGORIES = ("poll", "decide", "send", "smtp", "sigkill")
FOLLOWS_A_SEND = ("refund_followup", "promised_update", "review_request")


@dataclass
class Facts:
    """What a finished run left behind."""

    message_ids: list[str]
    rows: dict[tuple[str, str, str], str]  # (order, kind, trigger) -> state
    sent_ids: set[str]  # Message-IDs of rows the database says were sent by email
    events: set[tuple[str, str]]  # (tracking number, event key)
    integrity: str

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in Counter(self.message_ids).values())


@dataclass
class TrialResult:
    seed: int
    kills: list[str] = field(default_factory=list)  # where each kill that happened struck
    delivered: int = 0  # messages the SMTP sink received
    duplicates: int = 0
    lost_events: int = 0
    unsent: list[str] = field(default_factory=list)  # due, yet neither sent, held nor in review
    # due, and held until staff settle a send of unknown fate of the same order
    held: list[str] = field(default_factory=list)
    stuck: int = 0  # rows left in `sending`
    sent_not_delivered: int = 0  # rows marked sent whose message the sink never got
    needs_review: int = 0
    integrity: str = "ok"
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.duplicates == 0
            and self.lost_events == 0
            and not self.unsent
            and self.stuck == 0
            and self.sent_not_delivered == 0
            and self.integrity == "ok"
        )


class Bed:
    """One world (emulators, SMTP sink), one database with the scenario's orders, one child spec."""

    def __init__(self, workdir: Path, days: int) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        scenario = ReplayScenario.load(SCENARIO)
        self.steps = days * 24 // STEP_HOURS
        self.world: World = start_world(scenario.parcels, START)
        self.database = workdir / "parcelwatch.db"
        self.url = f"sqlite:///{self.database}"
        engine = make_engine(self.url)
        upgrade(engine)
        rows = []
        for index, order in enumerate(scenario.orders, start=1):
            row, _, _ = validate_record(index, order)
            assert row is not None
            rows.append(row)
        import_rows(engine, rows, START)
        engine.dispose()
        self.progress = workdir / "progress"
        self.runs = 0

    def spec(self, kill: dict[str, Any] | None, counts: Path | None = None) -> Path:
        self.runs += 1
        path = self.workdir / f"spec-{self.runs}.json"
        emulators = self.world.carriers.emulators
        path.write_text(
            json.dumps(
                {
                    "config": str(REPO / "config.toml"),
                    "database_url": self.url,
                    "urls": self.world.carriers.urls,
                    "origins": [e.origin for e in emulators.values()],
                    "smtp_port": self.world.smtp.port,
                    "start": START.isoformat(),
                    "step_hours": STEP_HOURS,
                    "steps": self.steps,
                    "progress": str(self.progress),
                    "kill": kill,
                    "counts": str(counts) if counts else None,
                }
            )
        )
        return path

    def start(
        self, kill: dict[str, Any] | None, counts: Path | None = None
    ) -> subprocess.Popen[bytes]:
        env = {**os.environ, **EMULATOR_ENV, "PYTHONPATH": str(REPO)}
        log = (self.workdir / f"run-{self.runs + 1}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.driver", str(self.spec(kill, counts))],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def run(self, kill: dict[str, Any] | None = None, counts: Path | None = None) -> int:
        proc = self.start(kill, counts)
        return proc.wait(timeout=300)

    def run_and_sigkill(self, after: float) -> int:
        proc = self.start(None)
        try:
            return proc.wait(timeout=after)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            return proc.wait(timeout=60)

    @property
    def finished(self) -> bool:
        return self.progress.exists() and int(self.progress.read_text()) > self.steps  # settled

    def facts(self) -> Facts:
        ids = [str(m["Message-ID"]) for m in self.world.smtp.messages]
        with sqlite3.connect(self.database) as db:
            rows = {
                (o, k, t): s
                for o, k, t, s in db.execute(
                    "SELECT o.order_id, r.kind, r.trigger, r.state FROM outreach r "
                    "JOIN orders o ON o.id = r.order_pk"
                )
            }
            sent_ids = {
                m
                for (m,) in db.execute(
                    "SELECT message_id FROM outreach WHERE state = 'sent' AND channel = 'email'"
                )
            }
            events = set(
                db.execute(
                    "SELECT s.tracking_number, e.event_key FROM tracking_events e "
                    "JOIN shipments s ON s.id = e.shipment_id"
                )
            )
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        return Facts(ids, rows, sent_ids, events, integrity)

    def stop(self) -> None:
        self.world.stop()


@dataclass
class Reference:
    facts: Facts
    counts: dict[str, int]
    seconds: float


def reference(workdir: Path, days: int) -> Reference:
    """The uninterrupted run, and how often it passed each kill point."""
    bed = Bed(workdir, days)
    try:
        counts = workdir / "counts.json"
        began = time.monotonic()
        code = bed.run(counts=counts)
        seconds = time.monotonic() - began
        assert code == 0 and bed.finished, (workdir / "run-1.log").read_text()[-3000:]
        return Reference(bed.facts(), json.loads(counts.read_text()), seconds)
    finally:
        bed.stop()


def plan_kills(seed: int, ref: Reference) -> list[dict[str, Any]]:
    """One to three kills, each in a seeded random category and at a seeded random point in it."""
    rng = random.Random(seed)
    kills: list[dict[str, Any]] = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        category = rng.choice(CATEGORIES)
        if category == "sigkill":
            kills.append({"sigkill_after": round(rng.uniform(0.2, 0.95) * ref.seconds, 2)})
            continue
        prefix = {"smtp": "send:smtp.", "send": "send:send."}.get(category, f"{category}:")
        points = sorted(p for p in ref.counts if p.startswith(prefix))
        if category == "send":  # commits in the send job count as send points too
            points += sorted(p for p in ref.counts if p.startswith("send:") and "commit" in p)
        if not points:
            continue
        point = rng.choice(points)
        kills.append({"point": point, "nth": rng.randint(1, ref.counts[point])})
    return kills


def trial(seed: int, ref: Reference, workdir: Path, days: int) -> TrialResult:
    began = time.monotonic()
    result = TrialResult(seed)
    bed = Bed(workdir, days)
    try:
        for kill in plan_kills(seed, ref):
            if bed.finished:
                break
            if "sigkill_after" in kill:
                code = bed.run_and_sigkill(kill["sigkill_after"])
                where = f"SIGKILL@{kill['sigkill_after']}s"
            else:
                code = bed.run(kill)
                where = f"{kill['point']}#{kill['nth']}"
            if code != 0:
                result.kills.append(where)
        for _ in range(3):  # restart until the scenario is over (a run that was not killed ends it)
            if bed.finished:
                break
            code = bed.run()
            assert code == 0, (workdir / f"run-{bed.runs}.log").read_text()[-3000:]
        assert bed.finished
        facts = bed.facts()
    finally:
        bed.stop()
    result.delivered = len(facts.message_ids)
    result.duplicates = facts.duplicates
    result.lost_events = len(ref.facts.events - facts.events)
    in_review = {order for (order, _, _), state in facts.rows.items() if state == "needs_review"}
    missing = [
        key
        for key, state in ref.facts.rows.items()
        if state in DELIVERED and facts.rows.get(key) not in ACCEPTABLE
    ]
    # A message that follows another send (the offer's follow-up, the update a message promised,
    # the review request after the delivered note) waits while that send's fate is unknown: it
    # is decided once staff settle it (mark it sent, or retry).
    result.held = sorted(
        "/".join(key)
        for key in missing
        if key[0] in in_review
        and key[1] in FOLLOWS_A_SEND
        and facts.rows.get(key) in (None, "held")
    )
    result.unsent = sorted("/".join(key) for key in missing if "/".join(key) not in result.held)
    result.stuck = sum(1 for s in facts.rows.values() if s == "sending")
    result.sent_not_delivered = len(facts.sent_ids - set(facts.message_ids))
    result.needs_review = sum(1 for s in facts.rows.values() if s == "needs_review")
    result.integrity = facts.integrity
    result.seconds = time.monotonic() - began
    return result
