"""Forgetting buyers: remove personal data from orders that are over, keep what statistics need.

An order is *closed* for this purpose when nothing more will happen to it:

* its state is `closed`, `cancelled` or `opted_out` (a `disputed` order is never closed: staff may
  still need the buyer's details), or
* it is `open` but *delivered and done*: it has shipments, every one is delivered, and none of its
  log rows is still pending or unresolved (planned, awaiting approval, approved, sending,
  needs_review, manual_pending).

It is old enough when its last activity (the order's own update, its shipments' last event or
delivery, its log rows' updates) is more than DAYS days ago.

Removed: the buyer's name, email and phone; every log row's rendered subject and body, staff
decision note and last error (they may quote the name or address). Kept: order id, country,
dates, states, product and quantity, tracking numbers and events, log kinds, triggers, states,
channels, due and sent times: everything `status`, `replay`-style counts and statistics use.
Purging twice is harmless; an order already purged is not counted again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, or_, select, update

from daemon.db import session_scope
from daemon.models import Order, OrderState, Outreach, OutreachState, Shipment

ORDERS = Order.__table__  # type: ignore[attr-defined]
SHIPMENTS = Shipment.__table__  # type: ignore[attr-defined]
OUTREACH = Outreach.__table__  # type: ignore[attr-defined]

CLOSED_STATES = (OrderState.CLOSED, OrderState.CANCELLED, OrderState.OPTED_OUT)
UNFINISHED = (
    OutreachState.PLANNED,
    OutreachState.AWAITING_APPROVAL,
    OutreachState.APPROVED,
    OutreachState.SENDING,
    OutreachState.NEEDS_REVIEW,
    OutreachState.MANUAL_PENDING,
)


@dataclass(frozen=True)
class PurgeReport:
    orders: int  # orders whose buyer data was removed now
    log_rows: int  # log rows whose text was removed now
    cutoff: datetime

    def as_dict(self) -> dict[str, object]:
        return {"orders": self.orders, "log_rows": self.log_rows, "cutoff": self.cutoff.isoformat()}


def purgeable_order_ids(engine: Engine, now: datetime, older_than_days: int) -> list[int]:
    """Primary keys of closed orders whose last activity is before now - DAYS."""
    cutoff = now - timedelta(days=older_than_days)
    with session_scope(engine) as session:
        orders = session.execute(
            select(ORDERS.c.id, ORDERS.c.state, ORDERS.c.updated_at).where(
                ORDERS.c.state.in_([*CLOSED_STATES, OrderState.OPEN])
            )
        ).all()
        ships: dict[int, list[tuple[bool, datetime | None, datetime | None]]] = {}
        for pk, closed, delivered_at, last_event_at in session.execute(
            select(
                SHIPMENTS.c.order_pk,
                SHIPMENTS.c.closed,
                SHIPMENTS.c.delivered_at,
                SHIPMENTS.c.last_event_at,
            )
        ):
            ships.setdefault(pk, []).append((closed, delivered_at, last_event_at))
        last_log = dict(
            session.execute(
                select(OUTREACH.c.order_pk, func.max(OUTREACH.c.updated_at)).group_by(
                    OUTREACH.c.order_pk
                )
            ).all()
        )
        unfinished = set(
            session.execute(
                select(OUTREACH.c.order_pk)
                .where(OUTREACH.c.state.in_([s.value for s in UNFINISHED]))
                .distinct()
            ).scalars()
        )
    chosen = []
    for pk, state, updated_at in orders:
        mine = ships.get(pk, [])
        if state == OrderState.OPEN:
            delivered = bool(mine) and all(d is not None for _, d, _ in mine)
            if not delivered or pk in unfinished:
                continue
        moments = [updated_at, last_log.get(pk)]
        moments += [t for _, d, e in mine for t in (d, e)]
        last = max(m for m in moments if m is not None)
        if last < cutoff:
            chosen.append(pk)
    return chosen


def purge(
    engine: Engine, now: datetime, older_than_days: int, dry_run: bool = False
) -> PurgeReport:
    cutoff = now - timedelta(days=older_than_days)
    ids = purgeable_order_ids(engine, now, older_than_days)
    personal_left = or_(ORDERS.c.buyer_name != "", ORDERS.c.email != "", ORDERS.c.phone != "")
    text_left = or_(
        OUTREACH.c.subject != "",
        OUTREACH.c.body_text != "",
        OUTREACH.c.decision_note != "",
        OUTREACH.c.last_error != "",
    )
    orders = rows = 0
    with session_scope(engine) as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            orders += len(
                session.execute(
                    select(ORDERS.c.id).where(ORDERS.c.id.in_(chunk), personal_left)
                ).all()
            )
            rows += len(
                session.execute(
                    select(OUTREACH.c.id).where(OUTREACH.c.order_pk.in_(chunk), text_left)
                ).all()
            )
            if dry_run:
                continue
            session.execute(
                update(ORDERS)
                .where(ORDERS.c.id.in_(chunk), personal_left)
                .values(buyer_name="", email="", phone="")
            )
            session.execute(
                update(OUTREACH)
                .where(OUTREACH.c.order_pk.in_(chunk), text_left)
                .values(subject="", body_text="", decision_note="", last_error="")
            )
    return PurgeReport(orders, rows, cutoff)
