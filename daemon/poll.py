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

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

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
from daemon.db import rowcount, session_scope
from daemon.leases import SHIPMENTS, claim, fenced, release_values
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


@dataclass
class PollReport:
    claimed: int = 0
    checked: int = 0
    new_events: int = 0
    status_changes: list[tuple[str, str, str]] = field(default_factory=list)  # number, old, new
    failures: dict[str, int] = field(default_factory=dict)  # adapter -> shipments not checked
    alarms: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Claimed:
    id: int
    token: int
    order_pk: int
    number: str
    adapter: str
    status: str
    last_event_at: datetime | None


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
        due = and_(
            SHIPMENTS.c.closed.is_(False),
            or_(SHIPMENTS.c.next_check_at.is_(None), SHIPMENTS.c.next_check_at <= now),
        )
        with session_scope(self.engine) as session:
            leased = claim(
                session,
                SHIPMENTS,
                due,
                [
                    SHIPMENTS.c.next_check_at.is_(None).desc(),
                    SHIPMENTS.c.next_check_at,
                    SHIPMENTS.c.id,
                ],
                now=now,
                owner=self.owner,
                lease_seconds=self.lease_seconds,
                limit=self.claim_limit,
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
            for row in rows:
                adapter = self.route(row.tracking_number, row.country, row.carrier)
                if adapter != row.adapter:
                    session.execute(
                        update(SHIPMENTS)
                        .where(fenced(SHIPMENTS, row.id, tokens[row.id]))
                        .values(adapter=adapter)
                    )
                claimed.append(
                    _Claimed(row.id, tokens[row.id], row.order_pk, row.tracking_number, adapter,
                             row.status, row.last_event_at)
                )  # fmt: skip
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
        last_failure = ""
        for start in range(0, len(numbers), adapter.batch_size):
            batch = numbers[start : start + adapter.batch_size]
            try:
                results = await adapter.track(batch)
            except CarrierAlarm as alarm:
                log.error("carrier alarm", extra={"carrier": name, "reason": alarm.reason})
                with session_scope(self.engine) as session:
                    raise_alarm(session, f"carrier:{name}", str(alarm), self.clock())
                report.alarms.append(str(alarm))
                rest = [i for n in numbers[start:] for i in by_number[n]]
                self._store_failures(rest, f"alarm: {alarm.reason}", _ALARMED, report, name)
                return
            except asyncio.CancelledError:
                rest = [i for n in numbers[start:] for i in by_number[n]]
                self._store_failures(rest, "poll cancelled", _TEMPORARY, report, name)
                raise
            except Exception as exc:  # an adapter bug must not strand its shipments' leases
                log.exception("adapter failed", extra={"carrier": name})
                rest = [i for n in numbers[start:] for i in by_number[n]]
                self._store_failures(
                    rest, f"adapter error: {type(exc).__name__}", _TEMPORARY, report, name
                )
                return
            self._store_results(results, by_number, report)
            failed = [r.detail for r in results if isinstance(r, TemporaryFailure)]
            last_failure = failed[-1] if failed else last_failure
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

    def _store_failures(
        self, items: Sequence[_Claimed], detail: str, wait: timedelta, report: PollReport, name: str
    ) -> None:
        now = self.clock()
        report.failures[name] = report.failures.get(name, 0) + len(items)
        with session_scope(self.engine) as session:
            for item in items:
                session.execute(
                    update(SHIPMENTS)
                    .where(fenced(SHIPMENTS, item.id, item.token))
                    .values(poll_error=detail[:500], next_check_at=now + wait, **release_values())
                )

    def _store_results(
        self,
        results: Sequence[TrackResult],
        by_number: Mapping[str, list[_Claimed]],
        report: PollReport,
    ) -> None:
        now = self.clock()
        with session_scope(self.engine) as session:
            for result in results:
                for item in by_number.get(result.number, []):
                    self._store_one(session, item, result, now, report)

    def _store_one(
        self, session: Any, item: _Claimed, result: TrackResult, now: datetime, report: PollReport
    ) -> None:
        values: dict[str, Any] = {"last_polled_at": now, **release_values()}
        if item.status == "":
            values["first_polled_at"] = now
        new_events = 0
        changed_status: str | None = None
        if isinstance(result, Tracked):
            new_events = self._insert_events(session, item.id, result.events, now)
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
        if changed_status is not None and changed_status != item.status:
            values["status_at"] = now
            report.status_changes.append((item.number, item.status, changed_status))
        written = session.execute(
            update(SHIPMENTS).where(fenced(SHIPMENTS, item.id, item.token)).values(**values)
        )
        if rowcount(written) != 1:
            # Our lease was taken over while we waited on the carrier; the other daemon's view wins.
            log.warning("lost lease", extra={"shipment": item.id})
            return
        if not isinstance(result, TemporaryFailure):
            report.checked += 1
        report.new_events += new_events
        if new_events or (changed_status is not None and changed_status != item.status):
            session.execute(
                update(ORDERS).where(ORDERS.c.id == item.order_pk).values(decide_after=now)
            )

    def _insert_events(
        self, session: Any, shipment_id: int, events: Sequence[TrackEvent], now: datetime
    ) -> int:
        if not events:
            return 0
        rows = {
            key: {
                "shipment_id": shipment_id,
                "event_key": key,
                "occurred_at": e.occurred_at,
                "status": e.status.value,
                "raw_code": e.raw_code[:100],
                "description": e.description,
                "location": e.location[:200],
                "source": e.source[:100],
                "recorded_at": now,
            }
            for e in events
            for key in [event_key(e)]
        }
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(EVENTS).on_conflict_do_nothing(
            index_elements=["shipment_id", "event_key"]
        )
        result = session.execute(statement, list(rows.values()))
        return max(rowcount(result), 0)
