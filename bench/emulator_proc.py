"""A 17TRACK emulator in its own process for the poll benchmark, loaded with N generated parcels.

Its own process, so the emulator does not share the benchmarked process's interpreter lock (a real
carrier is not in our process either), and the poll job's peak RSS is the job's alone. Every number
is registered beforehand, as after a first poll. Prints `{"url": ...}` once serving; runs until
SIGTERM. Run: python bench/emulator_proc.py --parcels N --now ISO
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from datetime import timedelta
from typing import Any

from bench.common import number
from carriers.emulators.scenario import Scenario, ScenarioEvent, ScenarioParcel, parse_time
from carriers.emulators.seventeentrack import SeventeenTrackEmulator
from carriers.status import Status


def scenario(parcels: int, now_iso: str) -> Scenario:
    """Three events each (posted in China, departed, arrived abroad); every tenth is delivered."""
    now = parse_time(now_iso)
    built = {}
    for i in range(parcels):
        start = now - timedelta(days=10 + i % 30, hours=i % 24)
        events = [
            ScenarioEvent(start, Status.INFO_RECEIVED, "Electronic information received",
                          "SHENZHEN", "first_mile", "+08:00"),
            ScenarioEvent(start + timedelta(days=2), Status.IN_TRANSIT, "Departed from sorting center",
                          "SHENZHEN", "first_mile", "+08:00"),
            ScenarioEvent(start + timedelta(days=6),
                          Status.DELIVERED if i % 10 == 0 else Status.IN_TRANSIT,
                          "Delivered" if i % 10 == 0 else "Arrived at destination country",
                          "SAO PAULO", "last_mile", "-03:00"),
        ]  # fmt: skip
        n = number(i)
        built[n] = ScenarioParcel(n, tuple(events), "CN", "BR")
    return Scenario(parcels=built, clock=now)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parcels", type=int, required=True)
    parser.add_argument("--now", required=True)
    args = parser.parse_args()
    emulator = SeventeenTrackEmulator(scenario(args.parcels, args.now))
    emulator.register(*emulator.scenario.parcels)
    emulator.start()
    done = threading.Event()

    def stop(*_: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(json.dumps({"url": emulator.url, "origin": emulator.origin}), flush=True)
    done.wait()
    emulator.stop()


if __name__ == "__main__":
    main()
