"""The decide job: for each order with something due, ask the policy and record its answer.

The decision and the log rows it creates are one transaction, and a log row is unique per
(order, kind, trigger), so deciding twice, or on two daemons at once, inserts nothing new.
Orders are looked at when their `decide_after` time comes: set by the policy's own
`next_decision_at`, and reset to "now" by the poll job whenever tracking changes.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from json.encoder import encode_basestring as _json_str  # json.dumps(ensure_ascii=False)
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, Engine, update
from sqlalchemy.engine import Dialect

from carriers.numbers import identify
from carriers.status import Status
from daemon.bulk import BulkSelect, bulk_insert, bulk_update
from daemon.config import Config, Window
from daemon.db import make_engine, rowcount, session_scope
from daemon.fanout import fan_out, process_count
from daemon.leases import OUTREACH, SHIPMENTS
from daemon.models import Order, OrderState, OutreachState, TrackingEvent
from daemon.order_store import REMOVED
from daemon.policy import (
    WITHDRAWABLE_STATES,
    Decision,
    EventFacts,
    Intent,
    LoggedOutreach,
    OrderFacts,
    ShipmentFacts,
    evaluate,
    initial_state,
    ymd,
)
from messages.kinds import Audience, Kind, Situation

log = logging.getLogger("parcelwatch.decide")

ORDERS = Order.__table__  # type: ignore[attr-defined]
EVENTS = TrackingEvent.__table__  # type: ignore[attr-defined]

# However quiet an order is, look at it again at least this often: a safety net, not a rule.
MAX_SLEEP = timedelta(days=1)
# A new order waits for its first poll before it is judged, or a fresh import would look like
# "tracking never found" everywhere. If the carriers cannot be reached for this long, judge anyway.
FIRST_POLL_GRACE = timedelta(hours=6)
_FIRST_POLL_RETRY = timedelta(minutes=5)
# The log row columns the job writes, in the order of `_record`'s tuples; the rest take their
# defaults. The last ones are what the buyer will read (situation and dates): send renders them.
_LOG_COLUMNS = ("order_pk", "kind", "trigger", "audience", "channel", "state", "reason",
                "tracking_snapshot", "needs_approval", "due_at", "created_at", "updated_at",
                "decision_note", "next_attempt_at", "situation", "next_update_at",
                "protection_until", "expected_by")  # fmt: skip
# A held row decided again (policy T2) is rewritten in place: these columns, found by its key.
_RELEASE_COLUMNS = _LOG_COLUMNS[3:]
_RELEASE_KEY = ("order_pk", "kind", "trigger", "state")
# A member's value by lookup: the enum property costs a call, per log row and snapshot.
ENUM_VALUE: dict[StrEnum, str] = {
    member: member.value
    for enum in (Kind, Audience, OutreachState, Status, Situation)
    for member in enum
}
# Orders per transaction. The per-statement cost is paid per chunk; 2,000 keeps each IN list far
# below SQLite's 32,766 variables (the RETURNING the jobs use needs SQLite 3.35 anyway).
_CHUNK = 2000
# Orders per write transaction. SQLite writes every page a transaction dirtied at its commit, and
# checkpoints the WAL: a pass's log rows and wake times land all over the outreach and orders
# indexes, so the same pages were written again for every piece. Ten pieces per commit wrote a
# 200k pass in 60% of the time (and 70% of the CPU) one piece per commit took.
WRITE_EVERY = 10 * _CHUNK
# From this many due orders on, a pass is spread over worker processes (`daemon.fanout`): below it,
# starting them, shipping their answers back and sharing two CPUs with the writer cost more than
# they save. Measured on 2 CPUs, one process against two: 12k orders 1.35-1.53 s against
# 1.74-2.09 s; 16k about even; 24k 3.4-5.5 s against 4.0-4.4 s (an AMD machine: even near 15k).
PARALLEL_FROM = 16_000
_NO_ID = 2**63 - 1  # above every id: a range without an upper end


class _OrderRow(NamedTuple):
    """What the policy and `channel_for` read of an order."""

    id: int
    order_id: str
    country: str
    shipped_at: datetime
    promised_days: int | None
    state: str
    created_at: datetime
    channel: str
    email: str
    source: str
    decide_after: datetime  # as read: the wake time is written only if it is still this


class _ShipmentRow(NamedTuple):
    id: int
    order_pk: int
    tracking_number: str
    status: str
    first_polled_at: datetime | None
    last_polled_at: datetime | None
    closed: bool
    poll_error: str


@dataclass(frozen=True)
class _Reads:
    due: BulkSelect
    orders: BulkSelect
    shipments: BulkSelect
    events: BulkSelect
    logged: BulkSelect


@lru_cache(maxsize=8)
def _reads(dialect: Dialect) -> _Reads:
    """The job's four reads for this dialect, built once."""
    return _Reads(
        orders=BulkSelect(
            dialect, ORDERS, _OrderRow._fields,
            "decide_after IS NOT NULL AND decide_after <= ? AND id > ? AND id <= ? "
            "ORDER BY id LIMIT ?",
        ),
        # No ORDER BY: the planner then reads the decide_after index, as an idle tick needs,
        # rather than walking every order in id order to skip the ones not due.
        due=BulkSelect(dialect, ORDERS, ("id",), "decide_after IS NOT NULL AND decide_after <= ?"),
        shipments=BulkSelect(dialect, SHIPMENTS, _ShipmentRow._fields, "order_pk IN (?) ORDER BY id"),
        events=BulkSelect(
            dialect, EVENTS,
            ("shipment_id", "occurred_at", "status", "raw_code", "description", "location"),
            "shipment_id IN (?)",
        ),
        logged=BulkSelect(
            dialect, OUTREACH,
            ("order_pk", "kind", "trigger", "state", "created_at", "due_at", "sent_at",
             "next_update_at", "protection_until", "situation", "next_attempt_at"),
            "order_pk IN (?)",
        ),
    )  # fmt: skip


@dataclass
class DecideReport:
    orders: int = 0
    planned: int = 0
    skipped: int = 0
    held: int = 0  # due, but not true in the parcel's present situation (policy T1)
    withdrawn: int = 0
    refresh: int = 0  # shipments asked to be polled now because a decision waits on them
    by_kind: Counter[str] = field(default_factory=Counter)

    def add(self, other: DecideReport) -> None:
        """Count `other`'s figures in (a pass's pieces, decided apart)."""
        self.orders += other.orders
        self.planned += other.planned
        self.skipped += other.skipped
        self.held += other.held
        self.withdrawn += other.withdrawn
        self.refresh += other.refresh
        self.by_kind.update(other.by_kind)


def channel_for(order: _OrderRow, intent: Intent, config: Config) -> str:
    """How a message travels: staff alerts by email to staff (or the log), buyers per order."""
    if intent.audience is Audience.STAFF:
        return "email" if config.store.staff_email else "manual"
    if intent.audience is Audience.MARKETPLACE:
        return "manual"  # staff extend protection in the seller center; the log tells them
    if order.channel:
        return str(order.channel)
    return "email" if order.email else "manual"


@dataclass
class Decider:
    engine: Engine
    config: Config
    clock: Callable[[], datetime]
    batch: int = _CHUNK

    # Worker processes for a large pass; None: `daemon.decide_processes` (0: one per CPU).
    processes: int | None = None
    parallel_from: int = PARALLEL_FROM
    write_every: int = WRITE_EVERY

    async def run_once(self) -> DecideReport:
        """Decide every order whose time has come; returns what was recorded."""
        started = time.monotonic()
        now = self.clock()
        with session_scope(self.engine) as session:
            conn = session.connection()
            reads = _reads(conn.dialect)
            due = sorted(
                row[0] for row in reads.due.run(conn, (reads.due.bind("decide_after", now),))
            )
        if not due:
            return DecideReport()
        report = await self._decide(due, now)
        _log_pass(report, time.monotonic() - started)
        return report

    async def _decide(self, due: list[int], now: datetime) -> DecideReport:
        """Decide the orders `due` (ids, ascending) and those falling due after the last one."""
        report = DecideReport()
        # Pieces of at most one chunk of due orders each, cut by id: disjoint, so they can be
        # decided in any order or side by side. The last one has no upper end, as the pass
        # always had: an order falling due meanwhile is decided now rather than a tick later.
        ends = due[self.batch - 1 :: self.batch]
        if not ends or ends[-1] != due[-1]:
            ends.append(due[-1])
        pieces = [
            (low, high, now)
            for low, high in zip([0, *ends[:-1]], [*ends[:-1], _NO_ID], strict=True)
        ]
        # What is decided is written every `write_every` orders, each time in one transaction;
        # a pass stopped in between has written whole orders only, and decides the rest again.
        pending = Decided()
        processes = min(process_count(self.configured_processes()), len(pieces))
        if processes > 1 and len(due) >= self.parallel_from:
            # Workers read and decide; this process writes what they decided while they go
            # on: one writer, so SQLite never makes a writer wait.
            start_args = (self.engine.url.render_as_string(hide_password=False), self.config,
                          self.batch)  # fmt: skip
            async with aclosing(fan_out(_decide_piece, pieces, processes=processes,
                                        start=_start_worker, start_args=start_args)) as decided:  # fmt: skip
                left = len(pieces)
                async for piece in decided:
                    left -= 1
                    # Towards the end, each piece is written as it comes: what is written
                    # after the last piece is then one piece, not up to `write_every` orders.
                    pending = self._write_when_full(
                        pending,
                        piece,
                        now,
                        report,
                        full=self.write_every if left > processes else 0,
                    )
        else:
            for low, high, _now in pieces:
                pending = self._write_when_full(
                    pending, self.decide_range(low, high, now), now, report, self.write_every
                )
        if pending.wakes:
            report.add(self.write(pending, now))
        return report

    def _write_when_full(
        self, pending: Decided, piece: Decided, now: datetime, report: DecideReport, full: int
    ) -> Decided:
        """`piece` added to `pending`, written (and counted in `report`) once it holds `full`
        orders; returns what is left to write."""
        pending.extend(piece)
        if len(pending.wakes) < full:
            return pending
        report.add(self.write(pending, now))
        return Decided()

    def configured_processes(self) -> int:
        """Worker processes for a large pass, 0 for one per CPU."""
        if self.processes is not None:
            return self.processes
        return self.config.daemon.decide_processes

    def decide_range(self, low: int, high: int, now: datetime) -> Decided:
        """What deciding the orders due at `now` with low < id <= high writes (reads only)."""
        decided = Decided()
        with self.engine.connect() as conn:
            reads = _reads(conn.dialect)
            while True:
                params = (reads.orders.bind("decide_after", now), low, high, self.batch)
                orders = [_OrderRow._make(row) for row in reads.orders.run(conn, params)]
                if not orders:
                    return decided
                low = orders[-1].id
                with _young_garbage_only():
                    self._decide_chunk(conn, orders, now, decided)

    def decide_all(self, now: datetime) -> Decided:
        """What a pass at `now` would write, reading only (`parcelwatch preview`)."""
        return self.decide_range(0, _NO_ID, now)

    def write(self, decided: Decided, now: datetime) -> DecideReport:
        """Store what `decide_range` decided, in one transaction; returns its report."""
        report = decided.report
        with session_scope(self.engine) as session:
            conn = session.connection()
            dialect = conn.dialect
            for order_pk, kind, trigger, reason, state in decided.withdrawals:
                result = session.execute(
                    update(OUTREACH)
                    .where(
                        OUTREACH.c.order_pk == order_pk,
                        OUTREACH.c.kind == kind,
                        OUTREACH.c.trigger == trigger,
                        OUTREACH.c.state.in_(list(WITHDRAWABLE_STATES)),
                    )
                    .values(state=state, decision_note=reason, updated_at=now)
                )
                if state == OutreachState.WITHDRAWN:
                    report.withdrawn += rowcount(result)
            # Held rows decided again: rewritten in place, only if still held.
            if decided.released:
                bulk_update(dialect, OUTREACH, _RELEASE_COLUMNS, _RELEASE_KEY).run(
                    conn, decided.released
                )
            # Driver-level executemany (`daemon.bulk`): the same bind processing as Core, but
            # each distinct value once; Core's per-row parameter building was a fifth of the pass.
            bulk_insert(dialect, OUTREACH, _LOG_COLUMNS, ("order_pk", "kind", "trigger")).run(
                conn, decided.planned
            )
            # Fenced by the value read: if the poll job set decide_after to "now" meanwhile (new
            # tracking), the order stays due and the next tick decides it on that tracking.
            bulk_update(dialect, ORDERS, ("decide_after",), ("id", "decide_after")).run(
                conn, decided.wakes
            )
            if decided.refresh:
                report.refresh += len(decided.refresh)
                # `closed IS NOT true`, not `closed IS false`: SQLite reads the second (and
                # `NOT closed`, which it gets as `closed = 0`) as the start of ix_shipments_due
                # and walked every open shipment due later, once per piece, instead of looking
                # the listed ids up. The column is NOT NULL: the two say the same.
                session.execute(
                    update(SHIPMENTS)
                    .where(
                        SHIPMENTS.c.id.in_(decided.refresh),
                        SHIPMENTS.c.closed.is_not(True),
                        SHIPMENTS.c.next_check_at > now,
                    )
                    .values(next_check_at=now)
                )
        return report

    def _decide_chunk(
        self, conn: Connection, orders: Sequence[_OrderRow], now: datetime, decided: Decided
    ) -> None:
        # Read through the driver, only the columns the policy reads, each distinct time parsed
        # once (`BulkSelect`): the ORM's, then Core's, per-row work was a large part of the pass.
        reads = _reads(conn.dialect)
        pks = [o.id for o in orders]
        shipments: dict[int, list[_ShipmentRow]] = defaultdict(list)
        for row in reads.shipments.run(conn, pks):
            s = _ShipmentRow._make(row)
            if s.closed and s.poll_error == REMOVED:
                continue  # a number replaced by an import is history, not a parcel on its way
            shipments[s.order_pk].append(s)
        events: dict[int, list[EventFacts]] = defaultdict(list)
        ship_ids = [s.id for rows in shipments.values() for s in rows]
        if ship_ids:
            for ship_id, at, status, raw_code, description, location in reads.events.run(
                conn, ship_ids
            ):
                events[ship_id].append(
                    EventFacts(at, _member(Status, status), raw_code, description, location)
                )
        logged: dict[int, list[LoggedOutreach]] = defaultdict(list)
        for (order_pk, kind, trigger, state, created_at, due_at, sent_at, next_update_at,
             protection_until, situation, next_attempt_at) in reads.logged.run(conn, pks):  # fmt: skip
            logged[order_pk].append(
                LoggedOutreach(_member(Kind, kind), trigger, _member(OutreachState, state),
                               created_at, due_at, sent_at, next_update_at, protection_until,
                               _member(Situation, situation) if situation else None,
                               next_attempt_at)
            )  # fmt: skip
        windows: dict[str, Window] = {}
        protected = frozenset(self.config.store.protection_sources)
        for order in orders:
            if now - order.created_at < FIRST_POLL_GRACE and any(
                s.first_polled_at is None for s in shipments.get(order.id, ())
            ):
                decided.wakes.append((now + _FIRST_POLL_RETRY, order.id, order.decide_after))
                continue
            state = _member(OrderState, order.state)
            # Positional, in the fields' order: keywords cost a third more per object.
            facts = OrderFacts(
                order.order_id,
                order.country,
                order.shipped_at,
                order.promised_days,
                state,
                has_protection=order.source in protected,
                first_seen_at=order.created_at,
            )
            ships = []
            for s in shipments.get(order.id, []):
                history = tuple(events.get(s.id, ()))
                ships.append(
                    ShipmentFacts(
                        s.tracking_number,  # tracking_number
                        _member(Status, s.status) if s.status else None,  # status
                        history,  # events
                        s.first_polled_at,
                        _warning(s, history),  # number_warning
                        s.last_polled_at,  # answered_at
                    )
                )
            window = windows.get(order.country)
            if window is None:
                window = windows[order.country] = self.config.window(order.country)
            answer = evaluate(facts, ships, window, logged.get(order.id, []), now)
            self._record(order, ships, answer.decision, now, decided)
            if answer.decision.awaiting_tracking:
                decided.refresh += [
                    s.id
                    for s in shipments[order.id]
                    if s.tracking_number in answer.decision.awaiting_tracking
                ]
            wake = now + MAX_SLEEP  # a closed, disputed or opted-out order: the daily safety net
            if state is OrderState.OPEN and answer.next_at is not None:
                wake = min(answer.next_at, wake)
            decided.wakes.append((wake, order.id, order.decide_after))
            decided.report.orders += 1

    def _record(
        self,
        order: _OrderRow,
        ships: Sequence[ShipmentFacts],
        decision: Decision,
        now: datetime,
        decided: Decided,
    ) -> None:
        """Add what the decision withdraws and its new log rows to `decided`."""
        for w in decision.withdrawals:
            state = OutreachState.HELD if w.hold else OutreachState.WITHDRAWN
            decided.withdrawals.append(
                (order.id, ENUM_VALUE[w.kind], w.trigger, w.reason, ENUM_VALUE[state])
            )
        if not decision.intents:
            return
        snapshot = snapshot_json(ships)
        report = decided.report
        planned = decided.planned
        # One debug record per log row (the pass's summary is the info record): a pass over a
        # whole store writes hundreds of thousands of rows; a journal line each cost half the
        # pass again and ran into journald's rate limit (10,000 lines in 30 s by default), which
        # then drops the daemon's other lines too, warnings included. The outreach log holds
        # every row with its reason.
        logging_decisions = log.isEnabledFor(logging.DEBUG)  # else no `extra` dict is built
        for intent in decision.intents:
            state = initial_state(intent)
            reason = intent.reason
            if intent.skipped and intent.skip_reason:
                reason = f"{reason} — skipped: {intent.skip_reason}"
            note = intent.note
            if intent.protection_until and intent.kind is Kind.EXTEND_PROTECTION:
                note = f"protection until {ymd(intent.protection_until)}"
            kind = ENUM_VALUE[intent.kind]
            row = (
                order.id,
                kind,
                intent.trigger,
                ENUM_VALUE[intent.audience],
                channel_for(order, intent, self.config),
                ENUM_VALUE[state],
                reason,
                snapshot,
                intent.needs_approval,
                intent.due_at,
                now,
                now,
                note,
                intent.send_after,
                ENUM_VALUE[intent.situation],
                intent.next_update_at,
                intent.protection_until,
                intent.expected_by,
            )
            if intent.was_held:  # rewrite the held row, found by its key (policy T2)
                decided.released.append(
                    (*row[3:], order.id, kind, intent.trigger, ENUM_VALUE[OutreachState.HELD])
                )
            else:
                planned.append(row)
            if state is OutreachState.SKIPPED:
                report.skipped += 1
            elif state is OutreachState.HELD:
                report.held += 1
            else:
                report.planned += 1
                report.by_kind[kind] += 1
            if logging_decisions:
                log.debug("decided", extra={"order_id": order.order_id, "kind": kind,
                                            "state": ENUM_VALUE[state]})  # fmt: skip


@dataclass
class Decided:
    """What deciding some orders writes, kept apart from writing it: worker processes decide,
    the daemon's own process writes (`Decider.run_once`)."""

    planned: list[tuple[Any, ...]] = field(default_factory=list)  # log rows, as _LOG_COLUMNS
    # held rows decided again: _RELEASE_COLUMNS' values, then _RELEASE_KEY's
    released: list[tuple[Any, ...]] = field(default_factory=list)
    # (new decide_after, order id, decide_after as read)
    wakes: list[tuple[datetime, int, datetime]] = field(default_factory=list)
    # (order id, kind, trigger, reason, new state: withdrawn, or held again)
    withdrawals: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    refresh: list[int] = field(default_factory=list)  # shipments a decision waits on (policy F1)
    report: DecideReport = field(default_factory=DecideReport)

    def log_rows(self) -> list[dict[str, Any]]:
        """The log rows this would write, new ones and held ones rewritten, by column name."""
        rows = [dict(zip(_LOG_COLUMNS, row, strict=True)) for row in self.planned]
        for row in self.released:
            values, key = row[: len(_RELEASE_COLUMNS)], row[len(_RELEASE_COLUMNS) :]
            rows.append(
                dict(zip(_RELEASE_COLUMNS, values, strict=True))
                | dict(zip(_RELEASE_KEY[:3], key[:3], strict=True))
            )
        return rows

    def extend(self, other: Decided) -> None:
        """Add what deciding other orders writes (every order has one wake time)."""
        self.planned += other.planned
        self.released += other.released
        self.wakes += other.wakes
        self.withdrawals += other.withdrawals
        self.refresh += other.refresh
        self.report.add(other.report)


def _log_pass(report: DecideReport, seconds: float) -> None:
    """One record per pass: at info level when it recorded anything, else at debug level (most
    ticks only move wake times)."""
    recorded = report.planned + report.skipped + report.held + report.withdrawn + report.refresh
    log.log(
        logging.INFO if recorded else logging.DEBUG,
        "decide pass",
        extra={
            "orders": report.orders,
            "planned": report.planned,
            "skipped": report.skipped,
            "held": report.held,
            "withdrawn": report.withdrawn,
            "refresh": report.refresh,
            "by_kind": ",".join(f"{kind}:{n}" for kind, n in sorted(report.by_kind.items())),
            "seconds": round(seconds, 2),
        },
    )


# A worker process's decider (`daemon.fanout`): one engine per process, for the whole pass.
_WORKER: Decider | None = None


def _start_worker(url: str, config: Config, batch: int) -> None:
    global _WORKER
    _WORKER = Decider(make_engine(url), config, _no_clock, batch=batch, processes=1)


def _decide_piece(low: int, high: int, now: datetime) -> Decided:
    assert _WORKER is not None, "not started by daemon.fanout"
    return _WORKER.decide_range(low, high, now)


def _no_clock() -> datetime:
    raise AssertionError("a worker decides at the pass's `now`, given with each piece")


@contextmanager
def _young_garbage_only() -> Iterator[None]:
    """No automatic garbage collection while a chunk is decided, one young collection after it.

    A chunk allocates a few hundred thousand short-lived objects (some in cycles: a reason's
    closure holds its case); the automatic collector would walk them many times over, and the
    full collections it triggers walk the whole heap. What the chunk left in cycles is freed by
    the young collection at its end, so memory stays bounded by one chunk.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.collect(0)
        if enabled:
            gc.enable()


def _warning(shipment: _ShipmentRow, events: Sequence[EventFacts]) -> str | None:
    if shipment.poll_error.startswith("invalid:"):
        return f"the carrier rejects {shipment.tracking_number}: {shipment.poll_error[8:].strip()}"
    if events:
        return None  # E6: a number the carrier reports events for is not suspect, whatever its form
    return _format_warning(shipment.tracking_number)


@lru_cache(maxsize=4096)
def _format_warning(number: str) -> str | None:
    """`identify` is pure, and a number without events is looked at again on every pass."""
    return identify(number).warning


_E = TypeVar("_E", bound=StrEnum)


def _member(enum: type[_E], value: str) -> _E:
    """`enum(value)` without the call's cost; an unknown value still raises ValueError."""
    member = enum._value2member_map_.get(value)
    return member if member is not None else enum(value)  # type: ignore[return-value]


def snapshot_json(ships: Sequence[ShipmentFacts]) -> str:
    """The tracking state a decision was made on, kept with the log row as its evidence.

    The text `json.dumps(snapshot, ensure_ascii=False)` gives for the dict
    `{number: {"status", "events", "last_event": {"at", "status", "description", "location"}}}`,
    written directly with the encoder json uses for each string: building the dict and walking
    it again cost more than the rest of writing the order's log rows.
    """
    parts: dict[str, str] = {}  # a number given twice keeps its first place and its last value
    for s in ships:
        last = max(s.events, key=_occurred_at, default=None)
        status = _STATUS_JSON[s.status] if s.status else "null"
        last_event = (
            f'{{"at": {_json_str(last.occurred_at.isoformat())}, '
            f'"status": {_STATUS_JSON[last.status]}, '
            f'"description": {_json_str(last.description)}, '
            f'"location": {_json_str(last.location)}}}'
            if last is not None
            else "null"
        )
        parts[s.tracking_number] = (
            f'{{"status": {status}, "events": {len(s.events)}, "last_event": {last_event}}}'
        )
    return "{" + ", ".join([f"{_json_str(number)}: {part}" for number, part in parts.items()]) + "}"


_occurred_at = attrgetter("occurred_at")
_STATUS_JSON = {status: _json_str(ENUM_VALUE[status]) for status in Status}
