"""Read-only views for people: one order with everything known about it, and the open-parcel summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from daemon.alarms import open_alarms
from daemon.config import STAGE_KINDS, Config
from daemon.models import Order, OrderState, Outreach, Shipment, TrackingEvent
from daemon.policy import STALE_GRACE


@dataclass(frozen=True)
class OrderView:
    order: Order
    shipments: list[Shipment]
    events: dict[int, list[TrackingEvent]]  # by shipment id, oldest first
    outreach: list[Outreach]  # oldest first

    def as_dict(self) -> dict[str, Any]:
        return {
            "order": self.order.model_dump(),
            "shipments": [
                {
                    **s.model_dump(exclude={"lease_owner", "lease_until", "lease_token"}),
                    "events": [e.model_dump() for e in self.events.get(s.id or 0, [])],
                }
                for s in self.shipments
            ],
            "outreach": [
                o.model_dump(exclude={"lease_owner", "lease_until", "lease_token"})
                for o in self.outreach
            ],
        }


def order_view(engine: Engine, order_id: str) -> OrderView | None:
    with Session(engine) as session:
        order = (
            session.execute(select(Order).where(col(Order.order_id) == order_id)).scalars().first()
        )
        if order is None:
            return None
        shipments = list(
            session.execute(
                select(Shipment)
                .where(col(Shipment.order_pk) == order.id)
                .order_by(col(Shipment.id))
            ).scalars()
        )
        events: dict[int, list[TrackingEvent]] = {}
        ids = [s.id for s in shipments]
        if ids:
            for event in session.execute(
                select(TrackingEvent)
                .where(col(TrackingEvent.shipment_id).in_(ids))
                .order_by(col(TrackingEvent.occurred_at))
            ).scalars():
                events.setdefault(event.shipment_id, []).append(event)
        outreach = list(
            session.execute(
                select(Outreach)
                .where(col(Outreach.order_pk) == order.id)
                .order_by(col(Outreach.created_at), col(Outreach.id))
            ).scalars()
        )
    return OrderView(order, shipments, events, outreach)


@dataclass(frozen=True)
class StatusSummary:
    """Open parcels by destination and normalised status, and how many have reached each stage."""

    open_orders: int
    open_shipments: int
    by_country_status: dict[str, dict[str, int]]
    past_stage: dict[str, dict[str, int]]  # country -> stage kind -> open orders at or past it
    outreach_states: dict[str, int]
    alarms: list[dict[str, Any]] = field(default_factory=list)  # open ones, oldest first
    # Open shipments whose carrier has not answered for longer than the policy's grace, by the
    # tracking API watching them: "our data is stale", as opposed to a parcel that is stuck.
    stale_tracking: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alarms": self.alarms,
            "stale_tracking": self.stale_tracking,
            "open_orders": self.open_orders,
            "open_shipments": self.open_shipments,
            "by_country_status": self.by_country_status,
            "past_stage": self.past_stage,
            "outreach_states": self.outreach_states,
        }


def status_summary(engine: Engine, config: Config, now: datetime) -> StatusSummary:
    by_country_status: dict[str, Counter[str]] = {}
    past_stage: dict[str, Counter[str]] = {}
    open_orders = open_shipments = 0
    with Session(engine) as session:
        orders = session.execute(
            select(col(Order.id), col(Order.country), col(Order.shipped_at)).where(
                col(Order.state) == OrderState.OPEN
            )
        ).all()
        open_pks = {pk for pk, _, _ in orders}
        shipments = session.execute(
            select(
                col(Shipment.order_pk),
                col(Shipment.status),
                col(Shipment.adapter),
                col(Shipment.last_polled_at),
            ).where(col(Shipment.closed).is_(False))
        ).all()
        outreach = session.execute(select(col(Outreach.state))).scalars().all()
        alarms = [
            {
                "source": a.source,
                "message": a.message,
                "count": a.count,
                "since": a.first_at.isoformat(),
                "last": a.last_at.isoformat(),
            }
            for a in open_alarms(session)
        ]
    country_of = {pk: country for pk, country, _ in orders}
    stale: Counter[str] = Counter()
    for order_pk, status, adapter, answered_at in shipments:
        if order_pk not in open_pks:
            continue
        if answered_at is not None and now - answered_at > STALE_GRACE:
            stale[adapter or "unrouted"] += 1
        open_shipments += 1
        country = country_of[order_pk]
        by_country_status.setdefault(country, Counter())[status or "not_checked_yet"] += 1
    undelivered = {row.order_pk for row in shipments if row.order_pk in open_pks}
    for pk, country, shipped_at in orders:
        open_orders += 1
        if pk not in undelivered:
            continue
        window = config.window(country)
        age_days = (now - shipped_at).days
        counts = past_stage.setdefault(country, Counter())
        for kind in STAGE_KINDS:
            day = window.stage_day(kind)
            if day is not None and age_days >= day:
                counts[kind] += 1
    return StatusSummary(
        open_orders=open_orders,
        open_shipments=open_shipments,
        by_country_status={c: dict(v) for c, v in sorted(by_country_status.items())},
        past_stage={c: dict(v) for c, v in sorted(past_stage.items()) if v},
        outreach_states=dict(Counter(outreach)),
        alarms=alarms,
        stale_tracking=dict(sorted(stale.items())),
    )
