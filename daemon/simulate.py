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
      "approve": "all",                  // optional: "all" composes and approves pending offers
                                         //   and carries out protection extensions a step after
                                         //   they appear (what staff would do), "none" leaves them
      "orders": [                        // import fields (see `parcelwatch orders import`)
        {"order_id": "BR-1", "buyer_name": "Ana", "email": "ana@example.com", "locale": "pt-BR",
         "country": "BR", "ship_date": "2026-09-01", "tracking_numbers": ["QQ850419295BR"]}
      ],
      "parcels": [                       // carriers/emulators/scenario.py format
        {"number": "QQ850419295BR", "destination": "BR", "events": [
          {"at": "2026-09-03T12:00:00Z", "status": "in_transit", "description": "Objeto postado"}]}
      ],
      "order_events": [                  // optional: what happens to an order, applied before
                                         //   the jobs of the first step at or after "at"
        {"at": "2026-10-02T09:00:00Z", "order_id": "BR-1", "event": "dispute_opened"},
        {"at": "2026-10-05T09:00:00Z", "order_id": "BR-1", "event": "tracking_replaced",
         "tracking_numbers": ["QQ850419300BR"]}
                                         // event: dispute_opened, opted_out, closed, cancelled,
                                         //   tracking_replaced (with the new numbers)
      ],
      "outages": [                       // optional: the daemon is down from..until: the clock
        {"from": "2026-09-20T00:00:00Z", "until": "2026-09-23T00:00:00Z"}   // moves, no job runs
      ]
    }

Each order event goes through the code that makes that change in the product: an opt-out through
`daemon.review.opt_out`, a dispute, closing, cancelling or a new tracking number as a re-import of
the order with that change (`daemon.order_store.import_rows`), which wakes the order for the decide
job and closes a replaced shipment as removed. Applied events are kept (`Simulation.applied`) and
printed among the messages.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Engine

from carriers.emulators.scenario import Scenario, ScenarioError, format_time, parse_time
from daemon.clock import VirtualClock
from daemon.config import CarrierSection, Config
from daemon.db import make_engine, upgrade
from daemon.importer import OrderRow, RowProblem, validate_record
from daemon.models import Order, OrderState, OutreachState
from daemon.order_store import import_rows
from daemon.review import (
    LogEntry,
    LogFilter,
    approvable_ids,
    approve,
    compose,
    list_log,
    mark_sent,
    opt_out,
)
from daemon.sandbox import EMULATOR_ENV, World, start_world
from daemon.wiring import Runtime, build_runtime
from messages.kinds import Kind
from messages.remedies import Remedies

DEFAULT_DAYS = 100


class ReplayError(Exception):
    """The scenario file cannot be used; the message names the file and what is wrong."""


class OrderEventKind(StrEnum):
    """What can happen to an order during a replay, besides its parcels' tracking."""

    DISPUTE_OPENED = "dispute_opened"
    OPTED_OUT = "opted_out"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    TRACKING_REPLACED = "tracking_replaced"


# The order state a store or an import file gives the order after each event (opt-out has a
# command of its own, and a replaced tracking number leaves the state alone).
EVENT_STATES: Mapping[OrderEventKind, OrderState] = {
    OrderEventKind.DISPUTE_OPENED: OrderState.DISPUTED,
    OrderEventKind.CLOSED: OrderState.CLOSED,
    OrderEventKind.CANCELLED: OrderState.CANCELLED,
}


@dataclass(frozen=True)
class OrderEvent:
    """One change to an order at a moment: a dispute, an opt-out, a new tracking number..."""

    at: datetime
    order_id: str
    event: OrderEventKind
    tracking_numbers: tuple[str, ...] = ()  # the order's numbers from now on (tracking_replaced)

    def record(self) -> dict[str, Any]:
        """The event as a replay prints it, in the scenario's own words."""
        data: dict[str, Any] = {
            "event": self.event.value,
            "order_id": self.order_id,
            "at": format_time(self.at),
        }
        if self.event is OrderEventKind.TRACKING_REPLACED:
            data["tracking_numbers"] = list(self.tracking_numbers)
        return data


@dataclass(frozen=True)
class Outage:
    """A span of the clock with the daemon down: from `start` (included) to `end` (excluded)."""

    start: datetime
    end: datetime

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class ReplayScenario:
    orders: list[dict[str, Any]]
    parcels: Scenario
    start: datetime
    until: datetime
    step: timedelta
    approve_all: bool
    order_events: tuple[OrderEvent, ...] = ()  # in time order
    outages: tuple[Outage, ...] = ()

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
        unknown = sorted(set(data) - SCENARIO_KEYS)
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
        by_id = {str(order.get("order_id", "")).strip(): order for order in orders}
        return cls(
            orders,
            parcels,
            start,
            end,
            timedelta(hours=step),
            approve_mode == "all",
            _order_events(data.get("order_events", []), by_id, where),
            _outages(data.get("outages", []), where),
        )

    def with_step(self, hours: float) -> ReplayScenario:
        """The same scenario stepped `hours` at a time (`replay --step-hours`)."""
        if not 0 < hours <= 24:
            raise ReplayError("--step-hours: a number of hours from 0 to 24")
        return replace(self, step=timedelta(hours=hours))

    def down_at(self, moment: datetime) -> bool:
        """Whether the daemon is down at `moment` (inside one of the outages)."""
        return any(outage.covers(moment) for outage in self.outages)


SCENARIO_KEYS = frozenset(
    {"start", "until", "step_hours", "approve", "orders", "parcels", "order_events", "outages"}
)
_ORDER_EVENT_KEYS = frozenset({"at", "order_id", "event", "tracking_numbers"})


def _order_events(
    items: Any, orders: Mapping[str, Mapping[str, Any]], where: str
) -> tuple[OrderEvent, ...]:
    """The scenario's order events, checked against its orders, in time order.

    A new tracking number is checked as an import would check it (the order's record with the
    new numbers through `validate_record`), so a replay never applies a change the product
    would refuse. Events at the same moment keep the file's order.
    """
    if not isinstance(items, list):
        raise ReplayError(f"{where}: 'order_events' must be a list")
    events: list[OrderEvent] = []
    for index, item in enumerate(items, start=1):
        place = f"{where}: order_events[{index}]"
        if not isinstance(item, dict):
            raise ReplayError(f"{place} must be an object")
        unknown = sorted(set(item) - _ORDER_EVENT_KEYS)
        if unknown:
            raise ReplayError(f"{place}: unknown key {unknown[0]!r}")
        at = _time_of(item, "at", place)
        order_id = item.get("order_id")
        if not isinstance(order_id, str) or order_id.strip() not in orders:
            raise ReplayError(f"{place}.order_id: {order_id!r} is not one of the scenario's orders")
        try:
            kind = OrderEventKind(str(item.get("event")))
        except ValueError:
            known = ", ".join(k.value for k in OrderEventKind)
            raise ReplayError(
                f"{place}.event: {item.get('event')!r} is not one of {known}"
            ) from None
        numbers: tuple[str, ...] = ()
        if kind is OrderEventKind.TRACKING_REPLACED:
            numbers = _new_numbers(orders[order_id.strip()], item, index, place)
        elif "tracking_numbers" in item:
            raise ReplayError(f"{place}.tracking_numbers: only a tracking_replaced event has them")
        events.append(OrderEvent(at, order_id.strip(), kind, numbers))
    return tuple(sorted(events, key=lambda e: e.at))


def _new_numbers(
    order: Mapping[str, Any], item: Mapping[str, Any], index: int, place: str
) -> tuple[str, ...]:
    """The new tracking numbers of a tracking_replaced event, read as an import reads them."""
    if not item.get("tracking_numbers"):
        raise ReplayError(f"{place}.tracking_numbers: required for tracking_replaced")
    row, errors, _ = validate_record(index, {**order, "tracking_numbers": item["tracking_numbers"]})
    if row is None:
        raise ReplayError(f"{place}.tracking_numbers: " + "; ".join(e.reason for e in errors))
    return row.tracking_numbers


def _outages(items: Any, where: str) -> tuple[Outage, ...]:
    """The scenario's outages, each a span with its end after its start."""
    if not isinstance(items, list):
        raise ReplayError(f"{where}: 'outages' must be a list")
    outages: list[Outage] = []
    for index, item in enumerate(items, start=1):
        place = f"{where}: outages[{index}]"
        if not isinstance(item, dict):
            raise ReplayError(f"{place} must be an object")
        unknown = sorted(set(item) - {"from", "until"})
        if unknown:
            raise ReplayError(f"{place}: unknown key {unknown[0]!r}")
        start, end = _time_of(item, "from", place), _time_of(item, "until", place)
        if end <= start:
            raise ReplayError(f"{place}.until: {item['until']!r} is not after 'from'")
        outages.append(Outage(start, end))
    return tuple(outages)


def _time_of(item: Mapping[str, Any], key: str, place: str) -> datetime:
    """`item[key]` as an aware UTC time, or a ReplayError naming the place and the key."""
    if key not in item:
        raise ReplayError(f"{place}.{key}: required")
    try:
        return parse_time(str(item[key]))
    except ScenarioError as exc:
        raise ReplayError(f"{place}.{key}: {exc}") from None


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
    """One run of a scenario against a config, in a folder of its own.

    The emails the SMTP sink receives are kept as .eml files in `mail_to` when given, else in
    the folder's `mail` when `keep_mail` is set (the demo).
    """

    scenario: ReplayScenario
    config: Config
    workdir: Path
    keep_mail: bool = False
    mail_to: Path | None = None
    world: World | None = None
    runtime: Runtime | None = None
    seen: set[int] = field(default_factory=set)
    applied: list[OrderEvent] = field(default_factory=list)

    DATABASE: ClassVar[str] = "parcelwatch.db"  # the replay's own, in `workdir`

    @property
    def database(self) -> Path:
        return self.workdir / self.DATABASE

    @property
    def mail_dir(self) -> Path:
        return self.mail_to or self.workdir / "mail"

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
        keep = self.mail_to is not None or self.keep_mail
        self.world = start_world(
            self.scenario.parcels, self.scenario.start, self.mail_dir if keep else None
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
            pending = list(self.scenario.order_events)
            current = {row.order_id: row for row in rows}
            for moment in self.steps():
                clock.set(moment)
                self.world.set_clock(moment)
                while pending and pending[0].at <= moment:
                    self._apply(engine, pending.pop(0), current)
                if not self.scenario.down_at(moment):
                    await self._run_jobs(self.runtime)
                if self.scenario.approve_all:
                    # As staff would: each refund offer composed first (a full refund of what
                    # the buyer paid, when the order says, and a new parcel), then approved.
                    offers = LogFilter(kind=Kind.REFUND_OFFER.value)
                    for offer in approvable_ids(engine, offers):
                        compose(engine, offer, _offer, "replay (approve all)", moment)
                    ids = approvable_ids(engine, LogFilter())
                    if ids:
                        approve(engine, ids, "replay (approve all)", moment)
                    # ...and each protection extension carried out in the seller center.
                    actions = LogFilter(
                        kind=Kind.EXTEND_PROTECTION.value, state=OutreachState.MANUAL_PENDING
                    )
                    done = [e.row.id for e in list_log(engine, actions) if e.row.id is not None]
                    if done:
                        mark_sent(engine, done, "replay (approve all)", moment)
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

    @staticmethod
    async def _run_jobs(runtime: Runtime) -> None:
        """One step of a running daemon: poll, decide, send, each again until it finds nothing.

        A run claims at most its batch (2,000 shipments, 200 messages); a daemon ticking all
        day would have done the rest within the step. After an outage this is the catch-up: the
        same jobs find everything that fell due while the daemon was down.
        """
        while (await runtime.poller.run_once()).claimed:
            pass
        await runtime.decider.run_once()
        while (await runtime.sender.run_once()).claimed:
            pass

    def _apply(self, engine: Engine, event: OrderEvent, rows: dict[str, OrderRow]) -> None:
        """Make an order event happen the way it happens to the product, and record it.

        `rows` holds each order as the seller's file or store describes it now: a dispute, a
        closing, a cancellation or a new tracking number is that order imported again with the
        change (which wakes the order for the decide job, and closes a replaced number's
        shipment as removed), an opt-out is staff's `orders opt-out`. An opted-out order keeps
        that state in `rows`, so that a later re-import in the replay does not reopen it.
        The change is dated at the event, not later than the scenario's start.
        """
        now = max(event.at, self.scenario.start)
        row = rows[event.order_id]
        if event.event is OrderEventKind.OPTED_OUT:
            opt_out(engine, event.order_id, "replay", now, "order_events")
            rows[event.order_id] = row._replace(state=OrderState.OPTED_OUT)
        else:
            if event.event is OrderEventKind.TRACKING_REPLACED:
                row = row._replace(tracking_numbers=event.tracking_numbers)
            else:
                row = row._replace(state=EVENT_STATES[event.event])
            rows[event.order_id] = row
            import_rows(engine, [row], now)
        self.applied.append(event)


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


def replay_lines(entries: list[LogEntry], events: Iterable[OrderEvent] = ()) -> Iterator[str]:
    """The log rows a replay prints, with the order events applied among them, in time order.

    A message sorts by its due time, an event by its own; an event comes first at the same
    moment, since it was applied before that step's jobs.
    """
    lines: list[tuple[tuple[datetime, int, str, str, str], dict[str, Any]]] = []
    for entry in entries:
        data = entry.as_dict()
        record = {k: data.get(k) for k in REPLAY_FIELDS}
        for key in ("due_at", "sent_at"):
            value = record[key]
            if isinstance(value, datetime):
                record[key] = value.astimezone(UTC).isoformat()
        row = entry.row
        lines.append(((row.due_at, 1, entry.order_id, row.kind, row.trigger), record))
    for event in events:
        lines.append(((event.at, 0, event.order_id, event.event.value, ""), event.record()))
    for _, record in sorted(lines, key=lambda line: line[0]):
        yield json.dumps(record, ensure_ascii=False, sort_keys=False)


def summary(entries: list[LogEntry]) -> dict[str, dict[str, int]]:
    """Counts by kind and state, for the end of a demo."""
    table: dict[str, dict[str, int]] = {}
    for e in entries:
        table.setdefault(e.row.kind, {}).setdefault(e.row.state, 0)
        table[e.row.kind][e.row.state] += 1
    return table


SENT_STATES = (OutreachState.SENT, OutreachState.MANUAL_PENDING)
