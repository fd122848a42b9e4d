"""`parcelwatch replay` and `parcelwatch demo`: parcelwatch on a virtual clock, on loopback."""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from daemon.cli.common import (
    EXIT_CONFIG,
    EXIT_INVALID_INPUT,
    EXIT_SCHEMA,
    SHIPPED_CONFIG,
    err,
    fail,
    out,
    state,
)

if TYPE_CHECKING:
    from rich.table import Table

    from daemon.review import LogEntry
    from daemon.simulate import ReplayScenario

# The simulation (emulators, SMTP sink, the whole runtime) is imported by the two commands that
# run it, not by every command.

DEMO_REVIEW_URL = "https://shop.example/review/{order_id}"


def replay(
    ctx: typer.Context,
    scenario: Annotated[
        Path | None,
        typer.Argument(help="Scenario JSON: orders and parcel timelines (or --from-db)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The config whose windows to replay.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Stop at this date (YYYY-MM-DD, UTC).")
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Keep the replay's database here.")
    ] = None,
    mail_dir: Annotated[
        Path | None, typer.Option("--mail-dir", help="Keep each email sent as an .eml file here.")
    ] = None,
    from_db: Annotated[
        bool,
        typer.Option("--from-db", help="Replay the orders in the config's database (--since)."),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="With --from-db: orders shipped on or after this date."),
    ] = None,
    step_hours: Annotated[
        float | None,
        typer.Option("--step-hours", help="Hours per step, instead of the scenario's (6)."),
    ] = None,
) -> None:
    """What parcelwatch would have sent: the outreach log of a scenario, as JSON lines."""
    import asyncio

    from daemon.config import ConfigError, load_config
    from daemon.simulate import ReplayError, ReplayScenario, Simulation, replay_lines

    try:
        cfg = load_config(config) if config else state(ctx).config()
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    end = _day("--until", until) if until else None
    try:
        if from_db:
            if scenario is not None:
                fail("give a scenario file or --from-db, not both", EXIT_INVALID_INPUT)
            if not since:
                fail("--from-db needs --since (YYYY-MM-DD)", EXIT_INVALID_INPUT)
            if workdir is not None:
                _not_the_source(workdir / Simulation.DATABASE, cfg.daemon.database_url)
            loaded = _from_db(cfg.daemon.database_url, _day("--since", since), end)
        else:
            if scenario is None:
                fail("give a scenario file, or --from-db --since DATE", EXIT_INVALID_INPUT)
            if since:
                fail("--since goes with --from-db", EXIT_INVALID_INPUT)
            loaded = ReplayScenario.load(scenario, end)
        if step_hours is not None:
            loaded = loaded.with_step(step_hours)
    except ReplayError as exc:
        fail(str(exc), EXIT_INVALID_INPUT)
    folder = workdir or Path(tempfile.mkdtemp(prefix="parcelwatch-replay-"))
    sim = Simulation(loaded, cfg, folder, mail_to=_mail_folder(mail_dir) if mail_dir else None)
    entries = asyncio.run(sim.run(_day_progress(loaded.start, loaded.until) if from_db else None))
    for line in replay_lines(entries, sim.applied):
        sys.stdout.write(line + "\n")


def _day(option: str, value: str) -> datetime:
    """A YYYY-MM-DD option as 00:00 UTC that day, or exit 1 naming the option."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)", EXIT_INVALID_INPUT)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _from_db(url: str, since: datetime, until: datetime | None) -> ReplayScenario:
    """The scenario of the orders in the seller's database, opened read-only (exit 3 without
    a current schema); progress on stderr, since stdout is the replay's output."""
    from sqlalchemy.engine import make_url

    from daemon.db import SchemaError, open_read_only
    from daemon.history import scenario_from_db

    try:
        engine = open_read_only(url)
    except SchemaError as exc:
        fail(str(exc), EXIT_SCHEMA)
    try:
        where = make_url(url).render_as_string(hide_password=True)
        return scenario_from_db(engine, since, until, where=where, progress=_say)
    finally:
        engine.dispose()


def _say(message: str) -> None:
    err.print(message, markup=False, highlight=False)


def _day_progress(start: datetime, until: datetime) -> Callable[..., Awaitable[None]]:
    """A step hook that says on stderr each time a simulated day is done."""
    total = (until - start).days + 1
    done: set[int] = set()

    async def on_step(moment: datetime, _fresh: list[LogEntry]) -> None:
        day = (moment - start).days + 1
        if day not in done:
            done.add(day)
            _say(f"day {day} of {total} simulated ({moment:%Y-%m-%d})")

    return on_step


def _mail_folder(path: Path) -> Path:
    """--mail-dir: a folder holding no .eml yet, so it ends up with exactly this run's mails."""
    if path.exists() and not path.is_dir():
        fail(f"--mail-dir: {path} is not a folder", EXIT_INVALID_INPUT)
    if path.is_dir() and any(path.glob("*.eml")):
        fail(
            f"--mail-dir: {path} already holds .eml files; give an empty folder", EXIT_INVALID_INPUT
        )
    return path


def _not_the_source(replay_db: Path, url: str) -> None:
    """Refuse a --workdir whose replay database would be the seller's own file."""
    from sqlalchemy.engine import make_url

    source = make_url(url).database or ""
    if replay_db.exists() and Path(source).exists() and replay_db.samefile(source):
        fail(
            f"--workdir: the replay would write into {source}, the database it reads; "
            "give another folder",
            EXIT_INVALID_INPUT,
        )


def demo(
    speed: Annotated[
        float,
        typer.Option("--speed", help="Real seconds per simulated day (0: as fast as it goes)."),
    ] = 1.0,
    workspace: Annotated[
        Path | None, typer.Option("--workspace", help="Folder for the database and emails.")
    ] = None,
) -> None:
    """Watch 20 orders to BR, RU, US, ES, FR and DE over 100 days, on local carriers and SMTP."""
    import asyncio

    from rich.live import Live
    from rich.table import Table

    from daemon.config import load_config
    from daemon.simulate import ReplayScenario, Simulation, summary

    root = workspace or Path(tempfile.mkdtemp(prefix="parcelwatch-demo-"))
    config = load_config(SHIPPED_CONFIG)
    config = config.model_copy(
        update={"store": config.store.model_copy(update={"review_url": DEMO_REVIEW_URL})}
    )
    sample = resources.files("daemon") / "samples" / "demo_scenario.json"
    with resources.as_file(sample) as path:
        scenario = ReplayScenario.load(path)
    sim = Simulation(scenario, config, root, keep_mail=True)
    view = _DemoView(scenario.start)
    started = time.monotonic()
    per_step = speed * scenario.step.total_seconds() / 86400

    async def on_step(moment: datetime, fresh: list[LogEntry]) -> None:
        view.update(moment, fresh)
        live.update(view.render())
        target = started + per_step * (view.steps)
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    with Live(view.render(), console=out, refresh_per_second=8, transient=False) as live:
        entries = asyncio.run(sim.run(on_step))
    table = Table("kind", "how it ended", title="Outreach log at the end")
    for kind, counts in sorted(summary(entries).items()):
        table.add_row(kind, ", ".join(f"{state} {n}" for state, n in sorted(counts.items())))
    out.print(table)
    mails = sorted(sim.mail_dir.glob("*.eml"))
    out.print(f"{len(mails)} emails received by the local SMTP sink: {sim.mail_dir}", markup=False)
    config_path = root / "config.toml"
    config_path.write_text(
        SHIPPED_CONFIG.read_text(encoding="utf-8").replace(
            "sqlite:///parcelwatch.db", f"sqlite:///{sim.database}"
        ),
        encoding="utf-8",
    )
    out.print(f"database: {sim.database}", markup=False)
    command = sys.argv[0] if sys.argv[0].endswith("parcelwatch") else "parcelwatch"
    out.print(f"look around: {command} --config {config_path} log", markup=False)
    out.print(f"             {command} --config {config_path} orders story BR-1001", markup=False)


class _DemoView:
    def __init__(self, start: datetime) -> None:
        self.start = start
        self.now = start
        self.steps = 0
        self.counts: Counter[str] = Counter()
        self.recent: list[str] = []

    def update(self, moment: datetime, fresh: list[LogEntry]) -> None:
        self.now = moment
        self.steps += 1
        for e in fresh:
            self.counts[e.row.state] += 1
            if e.row.state != "skipped":
                day = (moment - self.start).days
                self.recent.append(f"day {day:>3}  {e.order_id:<8} {e.row.kind:<26} {e.row.state}")
        self.recent = self.recent[-12:]

    def render(self) -> Table:
        from rich.table import Table

        day = (self.now - self.start).days
        table = Table(title=f"parcelwatch demo — {self.now:%Y-%m-%d} (day {day} of 100)",
                      show_header=False, box=None)  # fmt: skip
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "nothing yet"
        table.add_row(f"log so far: {counts}")
        for line in self.recent:
            table.add_row(line)
        return table
