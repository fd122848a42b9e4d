"""`parcelwatch poll --once`, `parcelwatch track NUMBER` and `parcelwatch sandbox`."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from daemon.cli.common import (
    EXIT_INVALID_INPUT,
    EXIT_NOT_FOUND,
    SHIPPED_CONFIG,
    fail,
    out,
    print_json,
    state,
)

# The carriers' HTTP stack, the emulators and the runtime are imported inside each command:
# every other command (an import, a log review) starts without them.


def poll(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run one poll cycle and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Poll every due shipment once and print what changed (the daemon does this on a schedule)."""
    import asyncio

    from daemon.cli.run_cmd import default_owner
    from daemon.clock import SystemClock
    from daemon.wiring import build_runtime

    if not once:
        fail(
            "use --once (the daemon polls on its own schedule: `parcelwatch run`)",
            EXIT_INVALID_INPUT,
        )
    st = state(ctx)
    runtime = build_runtime(st.config(), st.engine(), SystemClock(), owner=default_owner())

    async def cycle() -> object:
        try:
            return await runtime.poller.run_once()
        finally:
            await runtime.close()

    report = asyncio.run(cycle())
    data = report.__dict__
    if as_json:
        print_json(data)
        return
    out.print(
        f"claimed {data['claimed']} shipments, checked {data['checked']}, "
        f"{data['new_events']} new events",
        markup=False,
    )
    for number, old, new in data["status_changes"]:
        out.print(f"  {number}: {old or 'not checked yet'} -> {new}", markup=False)
    for carrier, count in data["failures"].items():
        out.print(f"  {carrier}: {count} not checked (will retry)", markup=False)
    for alarm in data["alarms"]:
        out.print(f"  ALARM {alarm}", markup=False)


def track(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="A tracking number.")],
    carrier: Annotated[
        str | None,
        typer.Option("--carrier", help="Tracking API to ask (default: routed by format)."),
    ] = None,
    country: Annotated[
        str | None, typer.Option("--country", help="Destination, for routing.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Ask a carrier about one number now and print its normalised history (nothing is stored)."""
    import asyncio

    from rich.table import Table

    from carriers.base import CarrierAlarm, InvalidNumber, NotFound, TemporaryFailure, Tracked
    from carriers.numbers import identify
    from carriers.registry import UnknownAdapter
    from daemon.clock import SystemClock
    from daemon.wiring import build_adapters, make_router

    config = state(ctx).config()
    clock = SystemClock()
    try:
        adapters = build_adapters(config, clock)
    except UnknownAdapter as exc:
        fail(str(exc), EXIT_INVALID_INPUT)
    name = carrier or make_router(config, set(adapters))(number, country or "", "")
    if name not in adapters:
        fail(f"tracking API {name!r} is not enabled in the config", EXIT_INVALID_INPUT)
    info = identify(number)

    async def ask() -> object:
        try:
            results = await adapters[name].track([info.number])
            return results[0]
        except CarrierAlarm as alarm:
            return alarm
        finally:
            await asyncio.gather(*(a.aclose() for a in adapters.values()))

    result = asyncio.run(ask())
    if as_json:
        print_json({"number": info.number, "format": info.format, "carrier": name,
                    "result": type(result).__name__, **getattr(result, "__dict__", {})})  # fmt: skip
        return
    out.print(f"{info.number} ({info.format}) via {name}", markup=False)
    if info.warning:
        out.print(f"warning: {info.warning}", markup=False)
    if isinstance(result, CarrierAlarm):
        fail(f"carrier alarm: {result}", EXIT_INVALID_INPUT)
    if isinstance(result, NotFound | InvalidNumber | TemporaryFailure):
        out.print(f"{type(result).__name__}: {result.detail}", markup=False)
        raise typer.Exit(EXIT_NOT_FOUND)
    assert isinstance(result, Tracked)
    out.print(f"status: {result.status} ({result.raw_status})", markup=False)
    table = Table("when (UTC)", "status", "code", "where", "what", "leg", box=None)
    for e in result.events:
        table.add_row(f"{e.occurred_at:%Y-%m-%d %H:%M}", e.status, e.raw_code, e.location,
                      e.description, e.source)  # fmt: skip
    out.print(table)


def sandbox(
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="Scenario JSON (default: the demo's).")
    ] = None,
    write_config: Annotated[
        Path | None,
        typer.Option("--write-config", help="Write a config.toml pointing at the sandbox here."),
    ] = None,
    mail_dir: Annotated[
        Path | None, typer.Option("--mail-dir", help="Keep every received email here as .eml.")
    ] = None,
) -> None:
    """Start the carrier emulators and an SMTP sink on loopback, print their URLs, serve until ^C."""
    from carriers.emulators.sandbox import demo_scenario
    from carriers.emulators.scenario import Scenario
    from daemon.sandbox import EMULATOR_ENV, sandbox_config, start_world

    chosen = Scenario.load(scenario) if scenario else demo_scenario()
    world = start_world(chosen, None, mail_dir)
    info = {
        "carriers": {n: e.url for n, e in world.carriers.emulators.items()},
        "smtp": f"127.0.0.1:{world.smtp.port}",
        "env": EMULATOR_ENV,
    }
    if write_config is not None:
        db = write_config.parent / "parcelwatch.db"
        write_config.write_text(
            sandbox_config(SHIPPED_CONFIG.read_text(encoding="utf-8"), world, f"sqlite:///{db}"),
            encoding="utf-8",
        )
        info["config"] = str(write_config)
    print(json.dumps(info), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    world.stop()
