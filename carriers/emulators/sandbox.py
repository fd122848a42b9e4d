"""Start every available carrier emulator on loopback and hand back their base URLs.

`start_sandbox(scenario)` finds each module `carriers.emulators.<name>` listed in `EMULATOR_MODULES`
that exists, starts the `EmulatorServer` subclass it defines, and loads the same scenario into all
of them, so one scenario drives every carrier. Run it as a process with
`python -m carriers.emulators.sandbox [--scenario FILE] [--clock ISO] [--port NAME=PORT ...]`: it
loads the shipped demo scenario (`carriers/scenarios/demo.json`) unless given one, prints
`{"<name>": {"url": ..., "control": ...}}` as one JSON line and serves until interrupted; drive it
through each emulator's `/_emulator/...` control endpoints. Ports are free ones unless named.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import signal
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any, Self

from carriers.emulators.scenario import Scenario, parse_time
from carriers.emulators.server import EmulatorServer

EMULATOR_MODULES: tuple[str, ...] = ("seventeentrack", "correios", "russianpost")


def emulator_class(name: str) -> type[EmulatorServer] | None:
    """The emulator defined in `carriers.emulators.<name>`, or None if that module does not exist."""
    module_name = f"carriers.emulators.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if (
            issubclass(obj, EmulatorServer)
            and obj.__module__ == module_name
            and not inspect.isabstract(obj)
        ):
            return obj
    return None


class Sandbox:
    """Running emulators by name; `urls` maps each name to the base URL an adapter should use."""

    def __init__(self, emulators: Mapping[str, EmulatorServer]) -> None:
        self.emulators = dict(emulators)

    @property
    def urls(self) -> dict[str, str]:
        return {name: emu.url for name, emu in self.emulators.items()}

    def load_scenario(self, scenario: Scenario | Mapping[str, Any]) -> None:
        for emu in self.emulators.values():
            emu.load_scenario(scenario)

    def set_clock(self, now: datetime | None) -> None:
        for emu in self.emulators.values():
            emu.set_clock(now)

    def stop(self) -> None:
        for emu in self.emulators.values():
            emu.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_sandbox(
    scenario: Scenario | Mapping[str, Any] | None = None,
    *,
    names: Iterable[str] = EMULATOR_MODULES,
    host: str = "127.0.0.1",
    ports: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> Sandbox:
    """Start every available emulator, load `scenario` into each; returns the sandbox.

    `ports` fixes the port of some emulators by name; the others get free ports.
    """
    running: dict[str, EmulatorServer] = {}
    for name in names:
        cls = emulator_class(name)
        if cls is None:
            continue
        emu = cls(host=host, port=(ports or {}).get(name, 0))
        if scenario is not None:
            emu.load_scenario(scenario)
        if now is not None:
            emu.set_clock(now)
        running[name] = emu.start()
    return Sandbox(running)


def demo_scenario() -> Scenario:
    """The scenario shipped with the package: one parcel per situation the demo shows."""
    text = resources.files("carriers").joinpath("scenarios/demo.json").read_text(encoding="utf-8")
    return Scenario.from_json(text)


def _port(value: str) -> tuple[str, int]:
    name, _, port = value.partition("=")
    if not name or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=PORT, got {value!r}")
    return name, int(port)


def main(argv: list[str] | None = None) -> None:
    """Serve the sandbox until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, help="scenario JSON file")
    parser.add_argument("--clock", help="virtual time to start at (ISO 8601 with offset)")
    parser.add_argument("--port", type=_port, action="append", default=[], help="NAME=PORT")
    args = parser.parse_args(argv)
    scenario = Scenario.load(args.scenario) if args.scenario else demo_scenario()
    sandbox = start_sandbox(
        scenario, ports=dict(args.port), now=parse_time(args.clock) if args.clock else None
    )
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    info = {
        n: {"url": e.url, "control": e.origin + "/_emulator"} for n, e in sandbox.emulators.items()
    }
    print(json.dumps(info), flush=True)
    done.wait()
    sandbox.stop()


if __name__ == "__main__":
    main()
