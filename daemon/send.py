"""The send job: claim ready log rows, render them, send them, record the outcome. Exactly once, honestly.

A row is committed as `sending` before its channel is called and `sent` after; a row found in
`sending` whose lease has run out (its daemon crashed or was killed mid-send) goes to `needs_review`
and is never re-sent automatically, because the server may or may not have accepted it. The
Message-ID is derived from the row, the same on every attempt, so a person or relay can spot a copy.
Every state change is fenced by the row's lease token: a daemon that lost its lease changes nothing.

What a row says is made by `daemon.compose.compose_message` from the row's own columns (the dates
and situation decide wrote, the remedies staff chose), the same function `log show` uses: send
renders, it never works a date out again. A buyer row whose promised next-update day is today or
past is not sent; it fails with the reason, for staff to see.

Named crash points (`CRASH_POINTS`) let the reliability tests kill the process at each step.

A run reads its claimed rows with their orders, shipments and events in a few queries, sends its
emails over one SMTP session (a connection reused for the run), and writes two fenced statements
per message: `sending` before DATA, the outcome after the reply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, partial
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect

from daemon.bulk import bulk_update
from daemon.compose import PromisedDatePassed, compose_message, load_material, protection_task
from daemon.config import Config
from daemon.db import rowcount, session_scope
from daemon.leases import OUTREACH, claim, release_values
from daemon.models import Order, OrderState, OutreachState, TrackingEvent
from daemon.policy import URGENT_GAP
from daemon.quiet import quiet_until
from messages.channels.base import (
    AmbiguousSendError,
    Channel,
    OutgoingMessage,
    PermanentSendError,
    ReceiptStatus,
    RetryableSendError,
    SessionChannel,
)
from messages.channels.smtp import SmtpSession
from messages.kinds import Audience, Kind
from messages.render import MissingTemplate

log = logging.getLogger("parcelwatch.send")

ORDERS = Order.__table__  # type: ignore[attr-defined]
EVENTS = TrackingEvent.__table__  # type: ignore[attr-defined]

CRASH_POINTS = ("after_claim", "after_sending_commit", "after_channel_returned")
# Backoff after a retryable failure, by attempt; past the last, the row fails for a person to see.
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
           timedelta(hours=6), timedelta(hours=12))  # fmt: skip
READY_STATES = (OutreachState.PLANNED, OutreachState.APPROVED)
BUYER_GAP = URGENT_GAP  # the least time between two emails to one buyer


def ready_to_send(now: datetime) -> ColumnElement[bool]:
    """A log row the send job may take at `now`: ready, due, and not waiting (a retry's backoff,
    quiet hours, one message at a time, the budget)."""
    return and_(
        OUTREACH.c.state.in_([s.value for s in READY_STATES]),
        OUTREACH.c.due_at <= now,
        or_(OUTREACH.c.next_attempt_at.is_(None), OUTREACH.c.next_attempt_at <= now),
    )


def hold_interrupted_sends(
    engine: Engine, which: ColumnElement[bool], now: datetime, when: str
) -> int:
    """Move `sending` rows matching `which` to `needs_review`: the server may or may not have
    accepted them, so a person decides (`log mark-sent` or `log retry`). Returns how many."""
    with session_scope(engine) as session:
        result = session.execute(
            update(OUTREACH)
            .where(OUTREACH.c.state == OutreachState.SENDING, which)
            .values(
                state=OutreachState.NEEDS_REVIEW,
                last_error=f"found in 'sending' {when}: the server may or may not have accepted "
                "it. Check, then `parcelwatch log mark-sent` or `retry`.",
                updated_at=now,
                **release_values(),
            )
        )
        return rowcount(result)


@dataclass
class SendReport:
    claimed: int = 0  # rows this run took on (at most `Sender.batch`)
    sent: int = 0
    manual: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0
    date_passed: int = 0  # held: the date the message promises is today or past (for the buyer)
    suppressed: int = 0
    deferred: int = 0  # quiet hours
    needs_review: int = 0
    recovered: int = 0  # rows found in `sending` after a crash


@dataclass
class Sender:
    engine: Engine
    config: Config
    clock: Callable[[], datetime]
    channels: Mapping[str, Channel]
    owner: str = "parcelwatch"
    lease_seconds: float = 300
    template_dir: Path | None = None
    batch: int = 200
    crash: Callable[[str], None] = field(default=lambda point: None)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def run_once(self) -> SendReport:
        report = SendReport()
        report.recovered = self.recover()
        now = self.clock()
        with session_scope(self.engine) as session:
            leased = claim(
                session,
                OUTREACH,
                ready_to_send(now),
                [OUTREACH.c.due_at, OUTREACH.c.id],
                now=now,
                owner=self.owner,
                lease_seconds=self.lease_seconds,
                limit=self.batch,
            )
        self.crash("after_claim")
        report.claimed = len(leased)
        if not leased:
            return report
        with session_scope(self.engine) as session:
            work = _load(session, leased)
            last_sent = _last_buyer_sends(session, {item.order.id for item in work})
        spacing = 60.0 / self.config.smtp.max_per_minute
        async with AsyncExitStack() as stack:
            # One database connection for the run's writes (two committed transactions per
            # message): checking one out of the pool and back for each cost more than the write.
            connection = stack.enter_context(self.engine.connect())
            sessions = _Sessions(self.channels, stack)
            ahead: dict[int, _Plan] = {}

            def plan_ahead(index: int) -> None:
                """Work out the next row's message (and, for SMTP, its content) while this one's
                content is with the server."""
                if index < len(work):
                    with suppress(Exception):  # planned again below, where it may raise
                        plan = ahead[index] = self._plan(work[index])
                        session = sessions.opened(work[index].row.channel or "manual")
                        if plan.message is not None and isinstance(session, SmtpSession):
                            session.prepare(plan.message)

            for index, item in enumerate(work):
                plan = ahead.pop(index, None) or self._plan(item)
                outcome = await self._one(
                    connection,
                    item,
                    plan,
                    report,
                    sessions,
                    partial(plan_ahead, index + 1),
                    last_sent,
                )
                if outcome == "email":
                    await self.sleep(spacing)  # never faster than the configured SMTP rate
        return report

    def recover(self) -> int:
        """Rows left in `sending` by a daemon whose lease ran out go to a person, never back out."""
        now = self.clock()
        expired = or_(OUTREACH.c.lease_until.is_(None), OUTREACH.c.lease_until < now)
        return hold_interrupted_sends(self.engine, expired, now, "after a crash or kill")

    def _plan(self, item: _Work) -> _Plan:
        """What to do with a claimed row, decided from the batch's data without touching the
        database or a channel, so it can be done while the previous message is on the wire."""
        now = self.clock()
        row, order = item.row, item.order
        kind = Kind(row.kind)
        window = self.config.window(order.country)
        audience = Audience(row.audience)
        if audience is not Audience.STAFF and order.state != OrderState.OPEN:
            return _Plan(now, "suppressed", OutreachState.SUPPRESSED,
                         {"last_error": f"order is {order.state}"})  # fmt: skip
        if audience is Audience.BUYER:
            resume = quiet_until(
                now,
                order.timezone or window.timezone,
                window.quiet_hours.start,
                window.quiet_hours.end,
            )
            if resume is not None:
                return _Plan(now, "deferred", defer_until=resume)
        if kind is Kind.REVIEW_REQUEST and not self.config.store.review_url:
            return _Plan(now, "suppressed", OutreachState.SUPPRESSED,
                         {"last_error": "no store.review_url configured"})  # fmt: skip
        try:
            if kind is Kind.EXTEND_PROTECTION:
                subject, text = protection_task(self.config, order, row)
                return _Plan(now, "manual", OutreachState.MANUAL_PENDING,
                             {"subject": subject, "body_text": text})  # fmt: skip
            message, locale = compose_message(
                self.config, row, order, item.shipments, item.last_event, item.pickup_event,
                now, self.template_dir,
            )  # fmt: skip
        except PromisedDatePassed as exc:
            # Never a message that names a day already gone: a person looks at it instead.
            return _Plan(now, "date_passed", OutreachState.FAILED,
                         {"last_error": f"held for staff: {exc}"})  # fmt: skip
        except (MissingTemplate, ValueError) as exc:
            return _Plan(now, "held", OutreachState.FAILED,
                         {"last_error": f"held for staff: {exc}"})  # fmt: skip
        return _Plan(now, "send", message=message, locale=locale)

    async def _one(
        self,
        connection: Connection,
        item: _Work,
        plan: _Plan,
        report: SendReport,
        sessions: _Sessions,
        while_waiting: Callable[[], None],
        last_sent: dict[int, datetime],
    ) -> str:
        now = plan.now
        row, order, token, row_id = item.row, item.order, item.token, item.row.id
        buyer = row.audience == Audience.BUYER
        # Never two emails to one buyer at once (an offer approved right after its notice, two
        # rows of one order in one run): the second waits BUYER_GAP.
        last = last_sent.get(order.id) if buyer and plan.message is not None else None
        if last is not None and now < last + BUYER_GAP:
            plan = _Plan(now, "deferred", defer_until=last + BUYER_GAP)
        with connection.begin():
            if plan.defer_until is not None:
                self._defer(connection, row, token, plan.defer_until, now)
                report.deferred += 1
                return plan.outcome
            message = plan.message
            if message is None:
                assert plan.state is not None
                self._finish(connection, row, token, plan.state, now, **plan.values)
                setattr(report, plan.outcome, getattr(report, plan.outcome) + 1)
                return plan.outcome
            channel_name = row.channel or "manual"
            channel = await sessions.get(channel_name)
            if channel is None:
                self._finish(connection, row, token, OutreachState.FAILED, now,
                             last_error=f"channel {channel_name!r} is not configured")  # fmt: skip
                report.failed += 1
                return "failed"
            audience = Audience(row.audience)
            marked = _fenced_update(
                connection,
                row_id,
                token,
                row.state,
                # the order was read with the batch: a buyer message needs it open still
                order_open=audience is not Audience.STAFF,
                state=OutreachState.SENDING,
                attempts=row.attempts + 1,
                message_id=message.message_id,
                subject=message.subject,
                body_text=message.text,
                locale=plan.locale,
                updated_at=now,
            )
            if marked != 1:
                state = connection.execute(
                    select(ORDERS.c.state).where(ORDERS.c.id == order.id)
                ).scalar_one()
                if audience is Audience.STAFF or state == OrderState.OPEN:
                    return "lost"  # approved/rejected/claimed elsewhere a moment ago: not ours
                self._finish(connection, row, token, OutreachState.SUPPRESSED, now,
                             last_error=f"order is {state}")  # fmt: skip
                report.suppressed += 1
                return "suppressed"
        self.crash("after_sending_commit")
        try:
            if isinstance(channel, SmtpSession):
                receipt = await channel.send(message, while_waiting=while_waiting)
            else:
                receipt = await channel.send(message)
        except RetryableSendError as exc:
            self._retry_or_fail(connection, row, token, exc, report)
            return channel_name
        except PermanentSendError as exc:
            self._write(
                connection, row_id, token, OutreachState.FAILED, last_error=exc.reason[:500]
            )
            report.failed += 1
            return channel_name
        except AmbiguousSendError as exc:
            self._write(
                connection, row_id, token, OutreachState.NEEDS_REVIEW, last_error=exc.reason[:500]
            )
            report.needs_review += 1
            return channel_name
        self.crash("after_channel_returned")
        if receipt.status is ReceiptStatus.AWAITING_STAFF:
            self._write(connection, row_id, token, OutreachState.MANUAL_PENDING, last_error="")
            report.manual += 1
        else:
            sent_at = self.clock()
            self._write(
                connection, row_id, token, OutreachState.SENT, sent_at=sent_at, last_error=""
            )
            if buyer:
                last_sent[order.id] = sent_at
            report.sent += 1
            log.info(
                "sent", extra={"outreach_id": row_id, "kind": row.kind, "channel": channel_name}
            )
        return channel_name

    def _finish(
        self,
        session: Connection,
        row: Row[Any],
        token: int,
        state: OutreachState,
        now: datetime,
        **values: Any,
    ) -> None:
        _fenced_update(session, row.id, token, row.state, state=state, updated_at=now,
                       **values, **release_values())  # fmt: skip

    def _defer(
        self, session: Connection, row: Row[Any], token: int, until: datetime, now: datetime
    ) -> None:
        _fenced_update(session, row.id, token, row.state, next_attempt_at=until, updated_at=now,
                       **release_values())  # fmt: skip

    def _write(
        self, connection: Connection, row_id: int, token: int, state: OutreachState, **values: Any
    ) -> None:
        with connection.begin():
            _fenced_update(connection, row_id, token, OutreachState.SENDING, state=state,
                           updated_at=self.clock(), **values, **release_values())  # fmt: skip

    def _retry_or_fail(
        self,
        connection: Connection,
        row: Row[Any],
        token: int,
        exc: RetryableSendError,
        report: SendReport,
    ) -> None:
        attempts = row.attempts + 1
        if attempts > len(BACKOFF):
            self._write(connection, row.id, token, OutreachState.FAILED,
                        last_error=f"gave up after {attempts} attempts: {exc.reason}"[:500])  # fmt: skip
            report.failed += 1
            return
        wait = BACKOFF[attempts - 1]
        if exc.retry_after:
            wait = max(wait, timedelta(seconds=exc.retry_after))
        self._write(connection, row.id, token, OutreachState(row.state), last_error=exc.reason[:500],
                    next_attempt_at=self.clock() + wait)  # fmt: skip
        report.retried += 1


# A buyer message goes out only while its order is open; checked again in the `sending` update
# (`order_open`), because the batch's orders were read before the first of its messages went out.


def _fenced_update(
    connection: Connection,
    row_id: int,
    token: int,
    expected: str,
    *,
    order_open: bool = False,
    **values: Any,
) -> int:
    """Change a claimed row still in state `expected` (see `daemon.leases.fenced`); returns the
    rows changed, 0 when the lease or the state moved on.

    Run through the driver (`daemon.bulk`), as the batch jobs' writes are: twice per message,
    Core's compile-cache lookup and parameter processing (and an ORM session around them) cost
    more than SQLite's own work. Each value goes through the bind processor Core would use, so
    what is stored is the same."""
    dialect = connection.dialect
    statement = bulk_update(dialect, OUTREACH, tuple(values), _FENCE,
                            _order_open(dialect) if order_open else "")  # fmt: skip
    return statement.run_one(connection, (*values.values(), row_id, token, expected))


_FENCE = ("id", "lease_token", "state")


@cache
def _order_open(dialect: Dialect) -> str:
    """The condition that the log row's order is still open, in this dialect's SQL."""
    quote = dialect.identifier_preparer.quote
    table = dialect.identifier_preparer.format_table(OUTREACH)
    orders = dialect.identifier_preparer.format_table(ORDERS)
    return (
        f"EXISTS (SELECT 1 FROM {orders} WHERE {orders}.{quote('id')} = "
        f"{table}.{quote('order_pk')} AND {orders}.{quote('state')} = '{OrderState.OPEN.value}')"
    )


@dataclass(frozen=True)
class _Plan:
    """What to do with one claimed row: defer it (`defer_until`), finish it in `state` with
    `values` (`outcome` names the report's counter), or send `message`."""

    now: datetime
    outcome: str
    state: OutreachState | None = None
    values: dict[str, Any] = field(default_factory=dict)
    defer_until: datetime | None = None
    message: OutgoingMessage | None = None
    locale: str = ""


@dataclass(frozen=True)
class _Work:
    """One claimed row with everything its message is made from, read with the batch."""

    row: Row[Any]
    token: int
    order: Row[Any]
    shipments: list[Row[Any]]
    last_event: Row[Any] | None
    pickup_event: Row[Any] | None


def _last_buyer_sends(session: Any, pks: set[int]) -> dict[int, datetime]:
    """When each of these orders last had a buyer message sent."""
    if not pks:
        return {}
    found = session.execute(
        select(OUTREACH.c.order_pk, func.max(OUTREACH.c.sent_at))
        .where(
            OUTREACH.c.order_pk.in_(pks),
            OUTREACH.c.audience == Audience.BUYER.value,
            OUTREACH.c.sent_at.is_not(None),
        )
        .group_by(OUTREACH.c.order_pk)
    ).all()
    return {pk: sent for pk, sent in found}


def _load(session: Any, leased: Sequence[tuple[int, int]]) -> list[_Work]:
    """The claimed rows with what their messages are made from, in claim order."""
    tokens = dict(leased)
    found = load_material(session, list(tokens))
    return [
        _Work(m.row, tokens[row_id], m.order, m.shipments, m.last_event, m.pickup_event)
        for row_id, _ in leased
        if (m := found.get(row_id)) is not None
    ]


class _Sessions:
    """The run's channels, each opened as a session (one SMTP connection for the run) on first
    use and closed when the run ends; channels without sessions are used as they are."""

    def __init__(self, channels: Mapping[str, Channel], stack: AsyncExitStack) -> None:
        self._channels = channels
        self._stack = stack
        self._open: dict[str, Channel] = {}

    def opened(self, name: str) -> Channel | None:
        """The channel if this run has used it already (no session is opened here)."""
        return self._open.get(name)

    async def get(self, name: str) -> Channel | None:
        if name in self._open:
            return self._open[name]
        channel = self._channels.get(name)
        if isinstance(channel, SessionChannel):
            channel = await self._stack.enter_async_context(channel.session())
        if channel is not None:
            self._open[name] = channel
        return channel
