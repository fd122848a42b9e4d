"""`parcelwatch run`: the daemon itself, as systemd starts it."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from daemon.cli.common import EXIT_CONFIG, EXIT_SCHEMA, err, state

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from daemon.clock import Clock
    from daemon.config import Config
    from daemon.service import Builder, Components

# The daemon's jobs, channels and carriers are imported when `run` starts them, not by every
# command that loads this module.

log = logging.getLogger("parcelwatch.run")


def default_owner() -> str:
    return os.environ.get("PARCELWATCH_INSTANCE") or socket.gethostname()


def recover_own_leftovers(engine: Engine, owner: str) -> int:
    """At start-up, whatever this instance had claimed before it stopped is dead: sends it left in
    'sending' go to a person (the server may have accepted them); its other leases (shipments, and
    log rows it had claimed but not yet started sending) are released, so the restarted daemon does
    not wait for them to run out."""
    from sqlalchemy import update

    from daemon.db import session_scope
    from daemon.leases import OUTREACH, SHIPMENTS
    from daemon.models import utcnow
    from daemon.send import hold_interrupted_sends

    held = hold_interrupted_sends(
        engine,
        OUTREACH.c.lease_owner == owner,
        utcnow(),
        "at start-up (the last run stopped mid-send)",
    )
    with session_scope(engine) as session:
        session.execute(
            update(OUTREACH)
            .where(OUTREACH.c.lease_owner == owner)  # its sending rows were held just above
            .values(lease_owner="", lease_until=None)
        )
        session.execute(
            update(SHIPMENTS)
            .where(SHIPMENTS.c.lease_owner == owner)
            .values(lease_owner="", lease_until=None)
        )
    return held


def builder(owner: str, clock: Clock) -> Builder:
    from daemon.service import Components
    from daemon.wiring import build_runtime

    def build(config: Config, engine: Engine) -> Components:
        runtime = build_runtime(config, engine, clock, owner=owner)
        d = config.daemon
        return Components(
            jobs={
                "poll": runtime.poller.run_once,
                "decide": runtime.decider.run_once,
                "send": runtime.sender.run_once,
                "housekeeping": _housekeeping(runtime.sender.recover, runtime.alerts.run_once),
            },
            intervals={
                "poll": d.poll_interval_seconds,
                "decide": d.decide_interval_seconds,
                "send": d.send_interval_seconds,
                "housekeeping": d.housekeeping_interval_seconds,
            },
            close=runtime.close,
        )

    return build


def _housekeeping(
    recover: Callable[[], int], alerts: Callable[[], Awaitable[int]]
) -> Callable[[], Awaitable[None]]:
    """Hold sends cut short by a dead daemon; tell staff of carrier outages and waiting offers."""

    async def run() -> None:
        await alerts()
        count = recover()
        if count:
            log.warning("unfinished sends moved to needs_review", extra={"count": count})

    return run


def run(
    ctx: typer.Context,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="text or json (default: daemon.log_format).")
    ] = None,
    instance: Annotated[
        str | None, typer.Option("--instance", help="This daemon's name in leases (default: host).")
    ] = None,
    clock_file: Annotated[
        Path | None,
        typer.Option("--clock-file", hidden=True, help="Simulations only: read 'now' from a file."),
    ] = None,
) -> None:
    """Run the daemon: poll carriers, decide, send, until SIGTERM. SIGHUP reloads the config."""
    import asyncio

    from daemon.clock import FileClock, SystemClock
    from daemon.config import ConfigError
    from daemon.db import SchemaError
    from daemon.logs import setup_logging
    from daemon.service import Service
    from daemon.wiring import secret_values

    st = state(ctx)
    owner = instance or default_owner()
    clock: Clock = FileClock(str(clock_file)) if clock_file else SystemClock()
    service = Service(st.resolved_path, builder(owner, clock), owner)
    try:
        service.start_checks()
    except ConfigError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    except SchemaError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_SCHEMA) from None
    assert service.config is not None and service.engine is not None
    daemon = service.config.daemon
    setup_logging(
        log_format or daemon.log_format,
        secret_values(service.config),
        logging.DEBUG if daemon.log_level == "debug" else logging.INFO,
    )
    recovered = recover_own_leftovers(service.engine, owner)
    if recovered:
        log.warning(
            "sends interrupted by the last stop held for review", extra={"count": recovered}
        )
    code = asyncio.run(service.run())
    raise typer.Exit(code)
