"""What staff do with the outreach log: filter and export it, compose refund offers, approve or
reject, mark manual sends.

A refund offer says only what a person chose: staff compose it (`compose`: full refund, reship,
partial refund, wait with protection extended) before it can be approved, and `approve` refuses a
refund offer nobody composed. Every change records who made it and when. State changes are conditional updates
(`UPDATE ... WHERE state IN (...)`), so a row the send job claimed a moment ago cannot be approved
or rejected from under it, and two people acting at once cannot both win.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Engine, Select, or_, select, true, update
from sqlmodel import Session, col

from daemon.db import rowcount, session_scope
from daemon.models import PENDING_STATES, Order, OrderState, Outreach, OutreachState
from messages.kinds import Kind
from messages.remedies import Remedies, RemedyError

_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")

EXPORT_COLUMNS = (
    "id",
    "order_id",
    "country",
    "kind",
    "trigger",
    "audience",
    "channel",
    "state",
    "needs_approval",
    "due_at",
    "created_at",
    "updated_at",
    "sent_at",
    "decided_by",
    "decided_at",
    "decision_note",
    "locale",
    "subject",
    "attempts",
    "last_error",
    "reason",
    "tracking_snapshot",
    "situation",
    "next_update_at",
    "remedies",
)


@dataclass(frozen=True)
class LogFilter:
    """Which log rows to show; every field is optional and they combine with AND."""

    order_id: str | None = None
    country: str | None = None
    kind: str | None = None
    state: str | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None  # searched in reason, subject, body and buyer name

    def apply(self, query: _Query) -> _Query:
        if self.order_id:
            query = query.where(col(Order.order_id) == self.order_id)
        if self.country:
            query = query.where(col(Order.country) == self.country.upper())
        if self.kind:
            query = query.where(col(Outreach.kind) == self.kind)
        if self.state:
            query = query.where(col(Outreach.state) == self.state)
        if self.channel:
            query = query.where(col(Outreach.channel) == self.channel)
        if self.since:
            query = query.where(col(Outreach.created_at) >= self.since)
        if self.until:
            query = query.where(col(Outreach.created_at) < self.until)
        if self.text:
            needle = f"%{self.text}%"
            query = query.where(
                or_(
                    col(Outreach.reason).ilike(needle),
                    col(Outreach.subject).ilike(needle),
                    col(Outreach.body_text).ilike(needle),
                    col(Order.buyer_name).ilike(needle),
                )
            )
        return query


@dataclass(frozen=True)
class LogEntry:
    row: Outreach
    order_id: str
    country: str

    def as_dict(self) -> dict[str, Any]:
        data = self.row.model_dump()
        data["order_id"] = self.order_id
        data["country"] = self.country
        return {k: data.get(k) for k in EXPORT_COLUMNS}


def list_log(engine: Engine, flt: LogFilter, limit: int | None = None) -> list[LogEntry]:
    query = flt.apply(
        select(Outreach, col(Order.order_id), col(Order.country))
        .join(Order, col(Order.id) == col(Outreach.order_pk))
        .order_by(col(Outreach.created_at), col(Outreach.id))
    )
    if limit is not None:
        query = query.limit(limit)
    with Session(engine) as session:
        return [LogEntry(row, oid, country) for row, oid, country in session.execute(query).all()]


def export(entries: Iterable[LogEntry], fmt: str) -> str:
    """The log as CSV, a JSON array, or JSON Lines; times in ISO 8601 UTC."""
    rows = [_jsonable(e.as_dict()) for e in entries]
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    raise ValueError(f"unknown export format {fmt!r}; use csv, json or jsonl")


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


class ReviewError(Exception):
    """The row does not exist or is not in a state that allows the change; says which."""


def _transition(
    engine: Engine,
    ids: Sequence[int],
    allowed: Iterable[str],
    values: dict[str, Any],
    action: str,
) -> list[int]:
    """Move rows to a new state if, and only if, they are still in an allowed state."""
    with session_scope(engine) as session:
        return _move(session, ids, tuple(allowed), values, action)


def _move(
    session: Session,
    ids: Sequence[int],
    allowed: tuple[str, ...],
    values: dict[str, Any],
    action: str,
    also: ColumnElement[bool] | None = None,
) -> list[int]:
    """`_transition` inside the caller's transaction; `also` is one more condition a row must
    meet (a refund offer must be composed to be approved)."""
    changed = []
    for row_id in ids:
        result = session.execute(
            update(Outreach)
            .where(
                col(Outreach.id) == row_id,
                col(Outreach.state).in_(allowed),
                also if also is not None else true(),
            )
            .values(**values)
        )
        if rowcount(result) == 1:
            changed.append(row_id)
            continue
        current = session.execute(
            select(col(Outreach.state), col(Outreach.kind)).where(col(Outreach.id) == row_id)
        ).first()
        if current is None:
            raise ReviewError(f"no log entry {row_id}")
        if also is not None and current.state in allowed and current.kind == Kind.REFUND_OFFER:
            raise ReviewError(_NOT_COMPOSED.format(id=row_id))
        raise ReviewError(
            f"log entry {row_id} is {current.state}; only {', '.join(allowed)} can be {action}"
        )
    if changed and "updated_at" in values:
        _wake_orders(session, changed, values["updated_at"])
    return changed


def _wake_orders(session: Session, row_ids: Sequence[int], now: datetime) -> None:
    """Staff changed these rows: their orders are decided again at once (a confirmed extension
    is announced, a rejected offer lets the window go on, an approved one starts its follow-up's
    clock once sent), not at the wake time the policy set before."""
    orders = select(col(Outreach.order_pk)).where(col(Outreach.id).in_(row_ids))
    session.execute(update(Order).where(col(Order.id).in_(orders)).values(decide_after=now))


_NOT_COMPOSED = (
    "log entry {id} is a refund offer nobody has composed: choose what to offer the buyer "
    "first, e.g. `parcelwatch log approve {id} --full-refund --reship`, or "
    "`parcelwatch log compose {id} ...` (options: --full-refund, --full-refund-amount, "
    "--reship, --partial AMOUNT|PCT%, --wait, --line); `parcelwatch log show {id}` shows it"
)

# A refund offer's remedies as staff chose them, or how to choose them from each row's order
# (`--full-refund` offers each order's own value).
RemedyChoice = Remedies | Callable[[Order], Remedies]


def compose(
    engine: Engine,
    row_id: int,
    remedies: RemedyChoice,
    by: str,
    now: datetime,
    *,
    protection_sources: Collection[str] = (),
) -> Remedies:
    """Store what a refund offer puts to the buyer, on a refund offer awaiting approval.

    `wait_extended` is refused for an order whose source is not one of `protection_sources`
    (config `store.protection_sources`): without a protection the seller can extend, "keep
    waiting with your protection extended" would be untrue. Returns the stored remedies; raises
    ReviewError naming the entry and the problem.
    """
    with session_scope(engine) as session:
        return _compose(session, row_id, remedies, by, now, protection_sources)


def _compose(
    session: Session,
    row_id: int,
    choice: RemedyChoice,
    by: str,
    now: datetime,
    protection_sources: Collection[str],
) -> Remedies:
    found = session.execute(
        select(Outreach, Order)
        .join(Order, col(Order.id) == col(Outreach.order_pk))
        .where(col(Outreach.id) == row_id)
    ).first()
    if found is None:
        raise ReviewError(f"no log entry {row_id}")
    row, order = found
    if row.kind != Kind.REFUND_OFFER:
        raise ReviewError(
            f"log entry {row_id} is a {row.kind}; only a refund_offer can be composed"
        )
    if row.state != OutreachState.AWAITING_APPROVAL:
        raise ReviewError(
            f"log entry {row_id} is {row.state}; only awaiting_approval can be composed"
        )
    try:
        remedies = choice if isinstance(choice, Remedies) else choice(order)
    except RemedyError as exc:
        raise ReviewError(f"log entry {row_id} (order {order.order_id}): {exc}") from None
    if remedies.wait_extended and order.source not in protection_sources:
        sources = ", ".join(protection_sources) or "none"
        raise ReviewError(
            f"log entry {row_id}: --wait: order {order.order_id} comes from {order.source!r}, "
            f"whose buyers have no protection the seller can extend (store.protection_sources: "
            f"{sources}); offer another remedy"
        )
    result = session.execute(
        update(Outreach)
        .where(
            col(Outreach.id) == row_id,
            col(Outreach.state) == OutreachState.AWAITING_APPROVAL,
        )
        .values(remedies=remedies.to_json(), decided_by=by, decided_at=now, updated_at=now)
    )
    if rowcount(result) != 1:  # withdrawn or decided a moment ago
        raise ReviewError(f"log entry {row_id} changed while it was composed; look again")
    return remedies


def approve(
    engine: Engine,
    ids: Sequence[int],
    by: str,
    now: datetime,
    note: str = "",
    *,
    remedies: RemedyChoice | None = None,
    protection_sources: Collection[str] = (),
) -> list[int]:
    """Let rows waiting for approval go out. With `remedies`, each row (a refund offer) is
    composed first (see `compose`), in the same transaction. A refund offer without remedies is
    refused: it would offer what nobody chose. All or nothing: one refused row changes none."""
    with session_scope(engine) as session:
        if remedies is not None:
            for row_id in ids:
                _compose(session, row_id, remedies, by, now, protection_sources)
        return _move(
            session,
            ids,
            (OutreachState.AWAITING_APPROVAL,),
            {
                "state": OutreachState.APPROVED,
                "decided_by": by,
                "decided_at": now,
                "decision_note": note,
                "updated_at": now,
            },
            "approved",
            also=or_(col(Outreach.kind) != Kind.REFUND_OFFER, col(Outreach.remedies) != ""),
        )


def reject(engine: Engine, ids: Sequence[int], by: str, now: datetime, reason: str) -> list[int]:
    if not reason.strip():
        raise ReviewError("a rejection needs a reason (--reason)")
    return _transition(
        engine,
        ids,
        PENDING_STATES,
        {
            "state": OutreachState.REJECTED,
            "decided_by": by,
            "decided_at": now,
            "decision_note": reason,
            "updated_at": now,
        },
        "rejected",
    )


def mark_sent(
    engine: Engine, ids: Sequence[int], by: str, now: datetime, note: str = ""
) -> list[int]:
    """Staff sent a manual message by hand, or confirmed an unknown-outcome send did go out."""
    return _transition(
        engine,
        ids,
        [OutreachState.MANUAL_PENDING, OutreachState.NEEDS_REVIEW],
        {
            "state": OutreachState.SENT,
            "sent_at": now,
            "decided_by": by,
            "decided_at": now,
            "decision_note": note,
            "updated_at": now,
        },
        "marked sent",
    )


def retry(engine: Engine, ids: Sequence[int], by: str, now: datetime, note: str = "") -> list[int]:
    """Staff checked that a failed or unknown-outcome send did not go out: queue it again."""
    return _transition(
        engine,
        ids,
        [OutreachState.NEEDS_REVIEW, OutreachState.FAILED],
        {
            "state": OutreachState.APPROVED,
            "next_attempt_at": None,
            "last_error": "",
            "decided_by": by,
            "decided_at": now,
            "decision_note": note or "re-queued by staff",
            "updated_at": now,
        },
        "retried",
    )


def approvable_ids(engine: Engine, flt: LogFilter) -> list[int]:
    """Rows matching a filter that are waiting for approval (for bulk approve)."""
    pending = LogFilter(**{**flt.__dict__, "state": OutreachState.AWAITING_APPROVAL})
    return [e.row.id for e in list_log(engine, pending) if e.row.id is not None]


def opt_out(engine: Engine, order_id: str, by: str, now: datetime, reason: str = "") -> int:
    """Stop every buyer message for an order; pending buyer rows are suppressed. Returns how many."""
    with session_scope(engine) as session:
        order = session.execute(
            select(Order).where(col(Order.order_id) == order_id)
        ).scalar_one_or_none()
        if order is None:
            raise ReviewError(f"no order {order_id!r}")
        order.state = OrderState.OPTED_OUT
        order.state_reason = f"opted out by {by}" + (f": {reason}" if reason else "")
        order.updated_at = now
        session.add(order)
        result = session.execute(
            update(Outreach)
            .where(
                col(Outreach.order_pk) == order.id,
                col(Outreach.audience) == "buyer",
                col(Outreach.state).in_(tuple(PENDING_STATES | {OutreachState.MANUAL_PENDING})),
            )
            .values(
                state=OutreachState.SUPPRESSED,
                decision_note=f"order opted out by {by}",
                decided_by=by,
                decided_at=now,
                updated_at=now,
            )
        )
        return rowcount(result)
