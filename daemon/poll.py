"""The poll job: claim due shipments, ask their carriers in batches, store what is new.

Safe to run at any time, twice, or on several daemons: shipments are leased, events are deduplicated
by a unique key, and every write to a shipment is fenced by its lease token. One carrier failing
(alarm, outage) never holds up the others: adapters run concurrently and each one's failure is
recorded against its own shipments only.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, select, update

from carriers.base import (
    Adapter,
    CarrierAlarm,
    InvalidNumber,
    NotFound,
    TemporaryFailure,
    Tracked,
    TrackEvent,
    TrackResult,
)
from carriers.breaker import CircuitBreaker
from carriers.status import Status
from daemon.alarms import clear_alarm, raise_alarm
from daemon.bulk import bulk_insert, bulk_update
from daemon.db import session_scope
from daemon.leases import SHIPMENTS, claim, fenced_all, release_values
from daemon.models import Order, TrackingEvent

log = logging.getLogger("parcelwatch.poll")

EVENTS = TrackingEvent.__table__  # type: ignore[attr-defined]
ORDERS = Order.__table__  # type: ignore[attr-defined]

Router = Callable[[str, str, str], str]
"""(tracking number, destination country, imported carrier name) -> adapter name."""

# How soon to look again, by what the parcel is doing. Near delivery, hours; moving, half a day;
# quiet, a day. Never again once delivered or returned.
_SOON = {
    Status.OUT_FOR_DELIVERY: timedelta(hours=3),
    Status.AVAILABLE_FOR_PICKUP: timedelta(hours=6),
    Status.DELIVERY_FAILURE: timedelta(hours=6),
    Status.CUSTOMS_PAYMENT_DUE: timedelta(hours=12),
    Status.CUSTOMS_HOLD: timedelta(hours=12),
    Status.IN_TRANSIT: timedelta(hours=12),
    Status.INFO_RECEIVED: timedelta(hours=12),
    Status.RETURNING: timedelta(hours=12),
    Status.NOT_FOUND: timedelta(hours=12),
    Status.EXCEPTION: timedelta(hours=24),
    Status.EXPIRED: timedelta(hours=24),
}
_QUIET_AFTER = timedelta(days=7)
_QUIET = timedelta(hours=24)
_TEMPORARY = timedelta(minutes=30)
_ALARMED = timedelta(hours=1)


def next_check(status: Status, last_event_at: datetime | None, now: datetime) -> datetime | None:
    """When to poll again; None once the parcel reached a final status."""
    if status.is_final:
        return None
    interval = _SOON.get(status, _QUIET)
    quiet = last_event_at is None or now - last_event_at > _QUIET_AFTER
    if quiet and status not in (Status.OUT_FOR_DELIVERY, Status.AVAILABLE_FOR_PICKUP):
        interval = max(interval, _QUIET)
    return now + interval


def event_key(event: TrackEvent) -> str:
    """The dedup key of an event: the same time, code and words are the same event."""
    raw = f"{event.occurred_at.isoformat()}|{event.raw_code}|{event.description}|{event.location}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:40]


# The key of every fenced write to a claimed shipment (see `daemon.leases`).
_FENCE = ("id", "lease_token")


@dataclass
class PollReport:
    claimed: int = 0
    checked: int = 0
    new_events: int = 0
    status_changes: list[tuple[str, str, str]] = field(default_factory=list)  # number, old, new
    failures: dict[str, int] = field(default_factory=dict)  # adapter -> shipments not checked
    alarms: list[str] = field(default_factory=list)


def _merge(report: PollReport, part: PollReport) -> None:
    report.checked += part.checked
    report.new_events += part.new_events
    report.status_changes.extend(part.status_changes)
    for name, count in part.failures.items():
        report.failures[name] = report.failures.get(name, 0) + count


_EVENT_COLUMNS = (
    "shipment_id",
    "event_key",
    "occurred_at",
    "status",
    "raw_code",
    "description",
    "location",
    "source",
)
_STORED_KEYS = select(EVENTS.c.shipment_id, EVENTS.c.event_key).where(
    EVENTS.c.shipment_id.in_(bindparam("ids", expanding=True))
)


@dataclass(frozen=True)
class _Claimed:
    id: int
    token: int
    order_pk: int
    number: str
    adapter: str
    status: str
    last_event_at: datetime | None


@dataclass(frozen=True)
class _Planned:
    """One shipment's answer, turned into the values to write and the events to store."""

    item: _Claimed
    values: dict[str, Any]
    events: Sequence[TrackEvent]
    changed: bool  # the status differs from the one claimed
    checked: bool  # the carrier answered (not a temporary failure)


@dataclass
class Poller:
    """Everything the poll job needs, injected: database, adapters, routing, clock, identity."""

    engine: Engine
    adapters: Mapping[str, Adapter]
    route: Router
    clock: Callable[[], datetime]
    owner: str = "parcelwatch"
    lease_seconds: float = 300
    claim_limit: int = 2000

    async def run_once(self) -> PollReport:
        now = self.clock()
        report = PollReport()
        claimed = self._claim(now)
        report.claimed = len(claimed)
        groups: dict[str, list[_Claimed]] = defaultdict(list)
        for item in claimed:
            groups[item.adapter].append(item)
        await asyncio.gather(
            *(self._poll_group(name, items, report) for name, items in groups.items())
        )
        return report

    def _claim(self, now: datetime) -> list[_Claimed]:
        # Never-polled shipments first (by id), then the longest overdue (by time, then id). Two
        # claims, each a range of the (closed, next_check_at) index: one query with
        # "next_check_at IS NULL OR next_check_at <= now" would read every open shipment to find
        # none due, which is what an idle tick over a million shipments mostly does.
        open_ = SHIPMENTS.c.closed.is_(False)
        with session_scope(self.engine) as session:
            leased = claim(
                session,
                SHIPMENTS,
                and_(open_, SHIPMENTS.c.next_check_at.is_(None)),
                [SHIPMENTS.c.id],
                now=now,
                owner=self.owner,
                lease_seconds=self.lease_seconds,
                limit=self.claim_limit,
            )
            if len(leased) < self.claim_limit:
                leased += claim(
                    session,
                    SHIPMENTS,
                    and_(open_, SHIPMENTS.c.next_check_at <= now),
                    [SHIPMENTS.c.next_check_at, SHIPMENTS.c.id],
                    now=now,
                    owner=self.owner,
                    lease_seconds=self.lease_seconds,
                    limit=self.claim_limit - len(leased),
                )
            if not leased:
                return []
            tokens = dict(leased)
            rows = session.execute(
                select(
                    SHIPMENTS.c.id,
                    SHIPMENTS.c.order_pk,
                    SHIPMENTS.c.tracking_number,
                    SHIPMENTS.c.carrier,
                    SHIPMENTS.c.adapter,
                    SHIPMENTS.c.status,
                    SHIPMENTS.c.last_event_at,
                    ORDERS.c.country,
                )
                .join(ORDERS, ORDERS.c.id == SHIPMENTS.c.order_pk)
                .where(SHIPMENTS.c.id.in_(list(tokens)))
            ).all()
            claimed = []
            routed: list[tuple[str, int, int]] = []
            for row in rows:
                adapter = self.route(row.tracking_number, row.country, row.carrier)
                if adapter != row.adapter:
                    routed.append((adapter, row.id, tokens[row.id]))
                claimed.append(
                    _Claimed(row.id, tokens[row.id], row.order_pk, row.tracking_number, adapter,
                             row.status, row.last_event_at)
                )  # fmt: skip
            if routed:  # first claims: which API watches each new number, in one executemany
                connection = session.connection()
                bulk_update(connection.dialect, SHIPMENTS, ("adapter",), _FENCE).run(
                    connection, routed
                )
        return claimed

    async def _poll_group(self, name: str, items: list[_Claimed], report: PollReport) -> None:
        adapter = self.adapters.get(name)
        if adapter is None:
            self._store_failures(
                items, f"no adapter {name!r} is configured", _ALARMED, report, name
            )
            return
        by_number: dict[str, list[_Claimed]] = defaultdict(list)
        for item in items:
            by_number[item.number].append(item)
        numbers = list(by_number)
        batches = [
            numbers[start : start + adapter.batch_size]
            for start in range(0, len(numbers), adapter.batch_size)
        ]
        last_failure = ""
        # Each batch's answer is stored in a worker thread while the next batch is asked for, so
        # the carrier's wait and the database writes overlap. One store at a time, in order; it
        # also renews the lease of the batch asked for next.
        storing: asyncio.Future[PollReport] | None = None
        self._renew([i for n in batches[0] for i in by_number[n]] if batches else [])
        try:
            for index, batch in enumerate(batches):
                try:
                    results = await adapter.track(batch)
                except CarrierAlarm as alarm:
                    done, storing = storing, None
                    await self._stored(done, report)
                    log.error("carrier alarm", extra={"carrier": name, "reason": alarm.reason})
                    with session_scope(self.engine) as session:
                        raise_alarm(session, f"carrier:{name}", str(alarm), self.clock())
                    report.alarms.append(str(alarm))
                    rest = [i for b in batches[index:] for n in b for i in by_number[n]]
                    self._store_failures(rest, f"alarm: {alarm.reason}", _ALARMED, report, name)
                    return
                except asyncio.CancelledError:
                    done, storing = storing, None
                    await self._stored(done, report)
                    rest = [i for b in batches[index:] for n in b for i in by_number[n]]
                    self._store_failures(rest, "poll cancelled", _TEMPORARY, report, name)
                    raise
                except Exception as exc:  # an adapter bug must not strand its shipments' leases
                    done, storing = storing, None
                    await self._stored(done, report)
                    log.exception("adapter failed", extra={"carrier": name})
                    rest = [i for b in batches[index:] for n in b for i in by_number[n]]
                    self._store_failures(
                        rest, f"adapter error: {type(exc).__name__}", _TEMPORARY, report, name
                    )
                    return
                done, storing = storing, None
                await self._stored(done, report)
                following = batches[index + 1] if index + 1 < len(batches) else []
                storing = asyncio.ensure_future(
                    asyncio.to_thread(
                        self._store_results,
                        results,
                        by_number,
                        [i for n in following for i in by_number[n]],
                    )
                )
                failed = [r.detail for r in results if isinstance(r, TemporaryFailure)]
                last_failure = failed[-1] if failed else last_failure
        finally:
            # Whatever ends the loop, the batch being stored is waited for: it is never abandoned
            # half-way, and its figures reach the report.
            await self._stored(storing, report)
        breaker = getattr(adapter, "breaker", None)
        down = isinstance(breaker, CircuitBreaker) and (
            breaker.consecutive_failures >= breaker.failure_threshold
        )
        with session_scope(self.engine) as session:
            if down and isinstance(breaker, CircuitBreaker):
                # Not a blip: enough requests in a row failed to open the circuit. A person
                # should know the carrier is down (and it clears itself when it answers again).
                message = (
                    f"{name} unreachable: {breaker.consecutive_failures} requests in a row "
                    f"failed (last: {last_failure[:200]})"
                )
                log.error("carrier unreachable", extra={"carrier": name, "reason": message})
                raise_alarm(session, f"carrier:{name}", message, self.clock())
                report.alarms.append(message)
            else:
                clear_alarm(session, f"carrier:{name}", self.clock())

    @staticmethod
    async def _stored(storing: asyncio.Future[PollReport] | None, report: PollReport) -> None:
        """Wait for a batch's store (even when cancelled meanwhile) and add its figures."""
        if storing is None:
            return
        try:
            part = await asyncio.shield(storing)
        except asyncio.CancelledError:
            part = await storing  # the thread cannot be stopped: its outcome is still ours
            _merge(report, part)
            raise
        _merge(report, part)

    def _renew(self, items: Sequence[_Claimed]) -> None:
        """A live daemon keeps its claim while it works through a long cycle."""
        if not items:
            return
        with session_scope(self.engine) as session:
            self._extend(session, items)

    def _extend(self, session: Any, items: Sequence[_Claimed]) -> None:
        """Push the leases of `items` one lease period past now, fenced by each one's token.

        A driver-level executemany like the shipment writes: it runs once per batch, and through
        Core every run compiled a fresh expanding (id, token) IN list."""
        until = self.clock() + timedelta(seconds=self.lease_seconds)
        connection = session.connection()
        bulk_update(connection.dialect, SHIPMENTS, ("lease_until",), _FENCE).run(
            connection, [(until, i.id, i.token) for i in items]
        )

    def _store_failures(
        self, items: Sequence[_Claimed], detail: str, wait: timedelta, report: PollReport, name: str
    ) -> None:
        now = self.clock()
        report.failures[name] = report.failures.get(name, 0) + len(items)
        if not items:
            return
        with session_scope(self.engine) as session:
            session.execute(
                update(SHIPMENTS)
                .where(fenced_all(SHIPMENTS, [(i.id, i.token) for i in items]))
                .values(poll_error=detail[:500], next_check_at=now + wait, **release_values())
            )

    def _store_results(
        self,
        results: Sequence[TrackResult],
        by_number: Mapping[str, list[_Claimed]],
        renew: Sequence[_Claimed] = (),
    ) -> PollReport:
        """Store one batch in one transaction with a handful of bulk statements (not three per
        shipment): the fenced shipment updates, the new events, the orders to decide again, and
        the lease renewal of the next batch. Runs in a worker thread, so it returns its figures
        instead of touching the shared report."""
        report = PollReport()
        now = self.clock()
        plans = [
            self._plan(item, result, now, report)
            for result in results
            for item in by_number.get(result.number, [])
        ]
        if not plans and not renew:
            return report
        with session_scope(self.engine) as session:
            if renew:
                self._extend(session, renew)
            if not plans:
                return report
            written = self._write_shipments(session, plans)
            kept = []
            for plan in plans:
                if plan.item.id not in written:
                    # Our lease was taken over while we waited on the carrier; the other daemon's
                    # view wins.
                    log.warning("lost lease", extra={"shipment": plan.item.id})
                    continue
                if plan.checked:
                    report.checked += 1
                kept.append(plan)
            new_events = self._insert_events(session, kept, now)
            report.new_events += sum(new_events.values())
            to_decide = {
                plan.item.order_pk for plan in kept if new_events.get(plan.item.id) or plan.changed
            }
            if to_decide:
                session.execute(
                    update(ORDERS)
                    .where(ORDERS.c.id.in_(sorted(to_decide)))
                    .values(decide_after=now)
                )
        return report

    def _plan(
        self, item: _Claimed, result: TrackResult, now: datetime, report: PollReport
    ) -> _Planned:
        """What one answer changes on its shipment (nothing is written yet)."""
        values: dict[str, Any] = dict(release_values())
        if not isinstance(result, TemporaryFailure):
            values["last_polled_at"] = now  # the carrier's last answer: policy F1-F3 read it
            if item.status == "":
                values["first_polled_at"] = now
        events: Sequence[TrackEvent] = ()
        changed_status: str | None = None
        if isinstance(result, Tracked):
            events = result.events
            last_event_at = max((e.occurred_at for e in result.events), default=item.last_event_at)
            values.update(
                status=result.status.value,
                raw_status=result.raw_status[:200],
                last_event_at=last_event_at,
                poll_error="",
                next_check_at=next_check(result.status, last_event_at, now),
                closed=result.status.is_final,
            )
            if result.status == Status.DELIVERED:
                delivered = [e.occurred_at for e in result.events if e.status == Status.DELIVERED]
                values["delivered_at"] = max(delivered, default=now)
            changed_status = result.status.value
        elif isinstance(result, NotFound | InvalidNumber):
            invalid = isinstance(result, InvalidNumber)
            values.update(
                status=Status.NOT_FOUND.value,
                raw_status="invalid number" if invalid else "not found",
                poll_error=(f"invalid: {result.detail}" if invalid else "")[:500],
                next_check_at=next_check(Status.NOT_FOUND, item.last_event_at, now),
            )
            changed_status = Status.NOT_FOUND.value
        else:
            assert isinstance(result, TemporaryFailure)
            wait = timedelta(seconds=result.retry_after) if result.retry_after else _TEMPORARY
            values.update(poll_error=result.detail[:500], next_check_at=now + wait)
            report.failures[item.adapter] = report.failures.get(item.adapter, 0) + 1
        changed = changed_status is not None and changed_status != item.status
        if changed:
            values["status_at"] = now
            report.status_changes.append((item.number, item.status, str(changed_status)))
        return _Planned(item, values, events, changed, not isinstance(result, TemporaryFailure))

    def _write_shipments(self, session: Any, plans: Sequence[_Planned]) -> set[int]:
        """Apply every plan, fenced by its lease token; returns the ids actually written.

        One driver-level executemany per shape of values. When the driver's counts say every row was written
        (the usual case) that is the answer; otherwise the tokens are read back inside the same
        transaction: a row we wrote still carries our token (we hold its write lock until commit),
        a row another daemon claimed carries a newer one.
        """
        connection = session.connection()
        shapes: dict[tuple[str, ...], list[_Planned]] = defaultdict(list)
        for plan in plans:
            shapes[tuple(sorted(plan.values))].append(plan)
        touched = 0
        for shape, group in shapes.items():
            statement = bulk_update(connection.dialect, SHIPMENTS, shape, _FENCE)
            touched += statement.run(
                connection,
                [(*(p.values[k] for k in shape), p.item.id, p.item.token) for p in group],
            )
        ids = {plan.item.id for plan in plans}
        if touched == len(plans) and connection.dialect.supports_sane_multi_rowcount:
            return ids
        tokens = {plan.item.id: plan.item.token for plan in plans}
        rows = connection.execute(
            select(SHIPMENTS.c.id, SHIPMENTS.c.lease_token).where(SHIPMENTS.c.id.in_(ids))
        ).all()
        return {row.id for row in rows if row.lease_token == tokens[row.id]}

    def _insert_events(
        self, session: Any, plans: Sequence[_Planned], now: datetime
    ) -> dict[int, int]:
        """Insert the events not stored yet, in one statement; returns new events per shipment."""
        ids = {plan.item.id for plan in plans if plan.events}
        if not ids:
            return {}
        stored = {
            (row.shipment_id, row.event_key)
            for row in session.connection().execute(_STORED_KEYS, {"ids": sorted(ids)})
        }
        rows = []
        new: dict[int, int] = defaultdict(int)
        for plan in plans:
            for e in plan.events:
                key = (plan.item.id, event_key(e))
                if key in stored:
                    continue
                stored.add(key)
                new[plan.item.id] += 1
                rows.append(
                    (
                        plan.item.id,
                        key[1],
                        e.occurred_at,
                        e.status.value,
                        e.raw_code[:100],
                        e.description,
                        e.location[:200],
                        e.source[:100],
                    )
                )
        if rows:
            # The key check above is the count; the unique constraint stays the guarantee
            # (insert-or-ignore on it).
            connection = session.connection()
            bulk_insert(
                connection.dialect,
                EVENTS,
                _EVENT_COLUMNS,
                ("shipment_id", "event_key"),
                same=("recorded_at",),  # one value for the batch, processed once
            ).run(connection, rows, same=(now,))
        return new
