"""Running parcelwatch on a virtual clock: the machinery behind `parcelwatch replay` and the demo.

A replay scenario is one JSON file: the orders (the same fields as an import) and what happens to
each parcel (the carrier-neutral timeline the emulators serve). The simulation starts the carrier
emulators and an SMTP sink on loopback, points the seller's own config at them and at a fresh SQLite
file, imports the orders, then moves the clock forward step by step and runs the same poll, decide and
send jobs the daemon runs. The log it produces is what the daemon would have done.

Scenario format (JSON):

    {
      "start": "2026-09-01T00:00:00Z",   // optional: first instant (default: earliest ship date)
      "until": "2026-12-10T00:00:00Z",   // optional: last instant (default: start + 100 days)
      "step_hours": 6,                   // optional: how far the clock moves per step (default 6)
      "approve": "all",                  // optional: "all" approves pending offers a step after
                                         //   they appear (what staff would do), "none" leaves them
      "orders": [                        // import fields (see `parcelwatch orders import`)
        {"order_id": "BR-1", "buyer_name": "Ana", "email": "ana@example.com", "locale": "pt-BR",
         "country": "BR", "ship_date": "2026-09-01", "tracking_numbers": ["QQ850419295BR"]}
      ],
      "parcels": [                       // carriers/emulators/scenario.py format
        {"number": "QQ850419295BR", "destination": "BR", "events": [
          {"at": "2026-09-03T12:00:00Z", "status": "in_transit", "description": "Objeto postado"}]}
      ]
    }
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from carriers.emulators.scenario import Scenario, ScenarioError, parse_time
from daemon.clock import VirtualClock
from daemon.config import CarrierSection, Config
from daemon.db import make_engine, upgrade
from daemon.importer import RowProblem, validate_record
from daemon.models import Order, OutreachState
from daemon.order_store import import_rows
from daemon.review import LogEntry, LogFilter, approvable_ids, approve, compose, list_log
from daemon.sandbox import EMULATOR_ENV, World, start_world
from daemon.wiring import Runtime, build_runtime
from messages.kinds import Kind
from messages.remedies import Remedies

DEFAULT_DAYS = 100


class ReplayError(Exception):
    """The scenario file cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ReplayScenario:
    orders: list[dict[str, Any]]
    parcels: Scenario
    start: datetime
    until: datetime
    step: timedelta
    approve_all: bool

    @classmethod
    def load(cls, path: Path, until: datetime | None = None) -> ReplayScenario:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReplayError(f"{path}: cannot read the scenario: {exc}") from None
        return cls.from_dict(data, str(path), until)

    @classmethod
    def from_dict(cls, data: Any, where: str, until: datetime | None = None) -> ReplayScenario:
        if not isinstance(data, dict):
            raise ReplayError(f"{where}: a scenario is a JSON object with 'orders' and 'parcels'")
        unknown = sorted(
            set(data) - {"start", "until", "step_hours", "approve", "orders", "parcels"}
        )
        if unknown:
            raise ReplayError(f"{where}: unknown key {unknown[0]!r}")
        orders = data.get("orders")
        if not isinstance(orders, list) or not orders:
            raise ReplayError(f"{where}: 'orders' must be a non-empty list")
        try:
            parcels = Scenario.from_dict({"parcels": data.get("parcels", [])})
        except ScenarioError as exc:
            raise ReplayError(f"{where}: parcels: {exc}") from None
        problems: list[RowProblem] = []
        ships: list[datetime] = []
        for index, order in enumerate(orders, start=1):
            if not isinstance(order, dict):
                raise ReplayError(f"{where}: orders[{index}] must be an object")
            row, errors, _ = validate_record(index, order)
            problems += errors
            if row is not None:
                ships.append(row.shipped_at)
        if problems:
            listed = "; ".join(f"orders[{p.line}].{p.field}: {p.reason}" for p in problems)
            raise ReplayError(f"{where}: {listed}")
        try:
            start = parse_time(data["start"]) if "start" in data else min(ships)
            end = (
                parse_time(data["until"])
                if "until" in data
                else start + timedelta(days=DEFAULT_DAYS)
            )
        except ScenarioError as exc:
            raise ReplayError(f"{where}: {exc}") from None
        if until is not None:
            end = until
        step = data.get("step_hours", 6)
        if not isinstance(step, int | float) or not 0 < step <= 24:
            raise ReplayError(f"{where}: step_hours must be a number of hours from 0 to 24")
        approve_mode = data.get("approve", "all")
        if approve_mode not in ("all", "none"):
            raise ReplayError(f"{where}: approve must be 'all' or 'none'")
        return cls(orders, parcels, start, end, timedelta(hours=step), approve_mode == "all")


def sandboxed(config: Config, world: World, database_url: str) -> Config:
    """The seller's config with storage, carriers and SMTP pointed at the loopback world.

    Policy, store identity and everything else stay as the seller wrote them: that is what a
    replay is for. The emulators' test credentials are used in place of real keys.
    """
    carriers = {
        name: CarrierSection(
            enabled=True,
            api_key_env=_env_for(name, "key"),
            secret_env=_env_for(name, "secret"),
            base_url=url,
        )
        for name, url in world.carriers.urls.items()
    }
    return config.model_copy(
        update={
            "daemon": config.daemon.model_copy(update={"database_url": database_url}),
            "smtp": config.smtp.model_copy(
                update={
                    "host": "127.0.0.1",
                    "port": world.smtp.port,
                    "tls": "none",
                    "username": "",
                    "password_env": "",
                    "max_per_minute": 1_000_000,
                }
            ),
            "carriers": carriers,
            "store": config.store.model_copy(
                update={"staff_email": config.store.staff_email or "staff@parcelwatch.invalid"}
            ),
        }
    )


def _env_for(carrier: str, part: str) -> str:
    names = {
        ("seventeentrack", "key"): "PARCELWATCH_17TRACK_KEY",
        ("correios", "key"): "PARCELWATCH_CORREIOS_USER",
        ("correios", "secret"): "PARCELWATCH_CORREIOS_ACCESS_CODE",
        ("russianpost", "key"): "PARCELWATCH_RUSSIANPOST_LOGIN",
        ("russianpost", "secret"): "PARCELWATCH_RUSSIANPOST_PASSWORD",
    }
    name = names.get((carrier, part), "")
    assert not name or name in EMULATOR_ENV
    return name


StepHook = Callable[[datetime, list[LogEntry]], Awaitable[None]]


async def _no_sleep(_: float) -> None:
    return None


@dataclass
class Simulation:
    """One run of a scenario against a config, in a folder of its own."""

    scenario: ReplayScenario
    config: Config
    workdir: Path
    keep_mail: bool = False
    world: World | None = None
    runtime: Runtime | None = None
    seen: set[int] = field(default_factory=set)

    @property
    def database(self) -> Path:
        return self.workdir / "parcelwatch.db"

    @property
    def mail_dir(self) -> Path:
        return self.workdir / "mail"

    def steps(self) -> Iterator[datetime]:
        moment = self.scenario.start
        while moment <= self.scenario.until:
            yield moment
            moment += self.scenario.step

    async def run(self, on_step: StepHook | None = None) -> list[LogEntry]:
        """Run every step; `on_step` sees the clock and the log rows new since the last step."""
        import os

        for key, value in EMULATOR_ENV.items():
            os.environ.setdefault(key, value)
        self.workdir.mkdir(parents=True, exist_ok=True)
        clock = VirtualClock(self.scenario.start)
        self.world = start_world(
            self.scenario.parcels, self.scenario.start, self.mail_dir if self.keep_mail else None
        )
        try:
            url = f"sqlite:///{self.database}"
            config = sandboxed(self.config, self.world, url)
            engine = make_engine(url)
            upgrade(engine)
            rows = []
            for index, order in enumerate(self.scenario.orders, start=1):
                row, _, _ = validate_record(index, order)
                assert row is not None  # validated when the scenario was loaded
                rows.append(row)
            import_rows(engine, rows, self.scenario.start)
            self.runtime = build_runtime(
                config, engine, clock, owner="replay", carrier_limits=False
            )
            self.runtime.sender.sleep = _no_sleep
            for moment in self.steps():
                clock.set(moment)
                self.world.set_clock(moment)
                # As a daemon would within the step: each job again until it finds nothing more
                # (a run claims at most its batch: 2,000 shipments, 200 messages).
                while (await self.runtime.poller.run_once()).claimed:
                    pass
                await self.runtime.decider.run_once()
                while (await self.runtime.sender.run_once()).claimed:
                    pass
                if self.scenario.approve_all:
                    # As staff would: each refund offer composed first (a full refund of what
                    # the buyer paid, when the order says, and a new parcel), then approved.
                    offers = LogFilter(kind=Kind.REFUND_OFFER.value)
                    for offer in approvable_ids(engine, offers):
                        compose(engine, offer, _offer, "replay (approve all)", moment)
                    ids = approvable_ids(engine, LogFilter())
                    if ids:
                        approve(engine, ids, "replay (approve all)", moment)
                if on_step is not None:
                    fresh = [e for e in list_log(engine, LogFilter()) if e.row.id not in self.seen]
                    self.seen.update(e.row.id for e in fresh if e.row.id is not None)
                    await on_step(moment, fresh)
            await self.runtime.close()
            result = list_log(engine, LogFilter())
            engine.dispose()
            return result
        finally:
            self.world.stop()


def _offer(order: Order) -> Remedies:
    """What a replay offers a buyer whose parcel is lost: their money back when the order says how
    much it was, and a new parcel."""
    if order.value:
        return Remedies(full_refund=order.value, reship=True, currency=order.currency)
    return Remedies(reship=True)


# The fields of a log row that a replay prints: everything a seller compares between two configs,
# nothing that differs between two runs of the same one (ids, lease tokens, Message-IDs).
REPLAY_FIELDS = ("order_id", "country", "kind", "trigger", "audience", "channel", "state",
                 "due_at", "sent_at", "locale", "subject", "reason")  # fmt: skip


def replay_lines(entries: list[LogEntry]) -> Iterator[str]:
    ordered = sorted(entries, key=lambda e: (e.row.due_at, e.order_id, e.row.kind, e.row.trigger))
    for entry in ordered:
        data = entry.as_dict()
        record = {k: data.get(k) for k in REPLAY_FIELDS}
        for key in ("due_at", "sent_at"):
            value = record[key]
            if isinstance(value, datetime):
                record[key] = value.astimezone(UTC).isoformat()
        yield json.dumps(record, ensure_ascii=False, sort_keys=False)


def summary(entries: list[LogEntry]) -> dict[str, dict[str, int]]:
    """Counts by kind and state, for the end of a demo."""
    table: dict[str, dict[str, int]] = {}
    for e in entries:
        table.setdefault(e.row.kind, {}).setdefault(e.row.state, 0)
        table[e.row.kind][e.row.state] += 1
    return table


SENT_STATES = (OutreachState.SENT, OutreachState.MANUAL_PENDING)
