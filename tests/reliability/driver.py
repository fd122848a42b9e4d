"""A small driver of the real poll, decide and send jobs on a virtual clock, for crash trials.

Run as `python -m tests.reliability.driver SPEC.json` by `tests.reliability.crashkit`: it opens the
trial's SQLite file, points the shipped config at the parent's emulators and SMTP sink, and runs
the steps from the one recorded in the progress file to the end, as `parcelwatch run` would (start-up
recovery of its own leftovers first). When the spec names a kill, the process dies with `os._exit`
at that point: no cleanup, no flush, no rollback, like a power cut or the OOM killer.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from daemon.cli.run_cmd import recover_own_leftovers
from daemon.clock import VirtualClock
from daemon.config import load_config
from daemon.db import make_engine
from daemon.leases import SHIPMENTS
from daemon.review import LogFilter, approvable_ids, approve
from daemon.simulate import sandboxed
from daemon.wiring import build_runtime
from messages.remedies import Remedies

KILLED = 137  # what a shell reports for SIGKILL; the parent only checks "non-zero"


class Killer:
    """Counts every kill point the run passes; dies at the one the spec names."""

    def __init__(self, kill: dict[str, Any] | None, counts_path: Path | None) -> None:
        self.kill = kill or {}
        self.counts: dict[str, int] = {}
        self.phase = "start"
        self.counts_path = counts_path

    def hit(self, point: str) -> None:
        key = f"{self.phase}:{point}"
        self.counts[key] = self.counts.get(key, 0) + 1
        self.counts[point] = self.counts.get(point, 0) + 1
        target = self.kill.get("point")
        if target in (key, point) and self.counts[target] == self.kill.get("nth", 1):
            os._exit(KILLED)


async def run(spec: dict[str, Any]) -> None:
    killer = Killer(spec.get("kill"), Path(spec["counts"]) if spec.get("counts") else None)
    config = load_config(Path(spec["config"]))
    world = SimpleNamespace(
        carriers=SimpleNamespace(urls=spec["urls"]), smtp=SimpleNamespace(port=spec["smtp_port"])
    )
    config = sandboxed(config, world, spec["database_url"])  # type: ignore[arg-type]
    engine = make_engine(spec["database_url"])
    event.listen(engine, "commit", lambda conn: killer.hit("before_commit"))
    event.listen(Session, "after_commit", lambda session: killer.hit("after_commit"))
    progress = Path(spec["progress"])
    start = datetime.fromisoformat(spec["start"])
    step = timedelta(hours=spec["step_hours"])
    steps = int(spec["steps"])
    first = int(progress.read_text()) if progress.exists() else 0
    clock = VirtualClock(start + first * step)
    owner = "crash-trial"
    recover_own_leftovers(engine, owner)
    runtime = build_runtime(config, engine, clock, owner=owner, carrier_limits=False)
    runtime.sender.crash = lambda point: killer.hit(f"send.{point}")
    email = runtime.sender.channels.get("email")
    if email is not None:
        email._hook = lambda stage: killer.hit(f"smtp.{stage}")  # type: ignore[attr-defined]

    async def no_sleep(_: float) -> None:
        return None

    runtime.sender.sleep = no_sleep
    async with httpx.AsyncClient() as http:
        # One step past the last is the settling step: every open shipment is polled once more,
        # so the reference and a trial are compared on everything the carriers reported by the
        # end, not on whichever poll happened to fall before it (kills shift a shipment's next
        # check by a step or more; a quiet parcel is looked at once a day).
        for index in range(first, steps + 1):
            _record_step(progress, index)
            moment = start + index * step
            clock.set(moment)
            for origin in spec["origins"]:
                await http.post(f"{origin}/_emulator/clock", json={"now": moment.isoformat()})
            if index == steps:
                with engine.begin() as conn:
                    conn.execute(
                        update(SHIPMENTS)
                        .where(SHIPMENTS.c.closed.is_(False))
                        .values(next_check_at=moment)
                    )
            killer.phase = "poll"
            await runtime.poller.run_once()
            killer.phase = "decide"
            await runtime.decider.run_once()
            killer.phase = "send"
            await runtime.sender.run_once()
            killer.phase = "approve"
            ids = approvable_ids(engine, LogFilter())
            if ids:
                # staff approve every offer (refund offers are the only kind waiting), composed
                approve(engine, ids, "crash trial (approve all)", moment,
                        remedies=Remedies(reship=True))  # fmt: skip
    _record_step(progress, steps + 1)
    await runtime.close()
    engine.dispose()
    if killer.counts_path is not None:
        killer.counts_path.write_text(json.dumps(killer.counts))


def _record_step(progress: Path, index: int) -> None:
    """Write the step reached so that a kill never leaves the file empty or half-written (the
    parent reads it to know where to restart): a new file, then an atomic rename."""
    fresh = progress.with_suffix(".new")
    fresh.write_text(str(index))
    os.replace(fresh, progress)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    asyncio.run(run(spec))


if __name__ == "__main__":
    main()
