"""A replay scenario from the seller's own database: what `parcelwatch replay --from-db` replays.

The orders shipped in a range, with the fields an import gave them; each shipment's stored tracking
events as its parcel's timeline (what the carrier emulators will serve, on the same days); and each
order's state now (disputed, cancelled, closed, opted out) as an order event at the order's last
update. Replayed with a copy of the config whose windows were changed, it answers "what would we
have sent last month with Brazil at 25/40/55" from real history rather than a made-up scenario.

Only SELECTs run here; the caller opens the database read-only (`daemon.db.open_read_only`).

What the database does not keep, the scenario cannot have: a tracking number replaced by a
re-import is not dated, so an order starts with its current numbers (the removed ones are left
out); the state event is dated at the order's last update, which a later re-import moves too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, select

from carriers.emulators.scenario import format_time
from daemon.models import Order, OrderState, Shipment, TrackingEvent
from daemon.order_store import REMOVED
from daemon.simulate import EVENT_STATES, OrderEventKind, ReplayError, ReplayScenario

ORDERS = Order.__table__  # type: ignore[attr-defined]
SHIPMENTS = Shipment.__table__  # type: ignore[attr-defined]
EVENTS = TrackingEvent.__table__  # type: ignore[attr-defined]

# Order columns that become import fields of the same name (`value` becomes `order_value`;
# `ship_date` and the tracking numbers are added apart). The phone number is left out: no replay
# needs it.
ORDER_FIELDS = ("order_id", "source", "buyer_name", "email", "locale", "country",
                "promised_days", "product", "quantity", "timezone", "channel",
                "value", "currency")  # fmt: skip

# The order event that brings an order from open to its stored state.
STATE_EVENTS: Mapping[str, OrderEventKind] = {
    **{state.value: kind for kind, state in EVENT_STATES.items()},
    OrderState.OPTED_OUT.value: OrderEventKind.OPTED_OUT,
}

Progress = Callable[[str], None]


def scenario_from_db(
    engine: Engine,
    since: datetime,
    until: datetime | None = None,
    *,
    where: str,
    step_hours: float = 6,
    progress: Progress | None = None,
) -> ReplayScenario:
    """The orders shipped from `since` (to `until`, if given) as a scenario, checked as a file is.

    `where` names the database in errors. The replay starts at `since` and ends at `until`, or
    else at the newest moment the database knows of for these orders: past it there is no
    tracking to replay, only parcels that would look stuck.
    """
    data = scenario_data(engine, since, until, progress=progress)
    if not data["orders"]:
        span = f"from {since:%Y-%m-%d}" + (f" to {until:%Y-%m-%d}" if until else "")
        raise ReplayError(f"{where}: no orders shipped {span}")
    data["step_hours"] = step_hours
    return ReplayScenario.from_dict(data, where)


def scenario_data(
    engine: Engine,
    since: datetime,
    until: datetime | None = None,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The scenario as the JSON a scenario file holds (see `daemon.simulate`)."""
    shipped = ORDERS.c.shipped_at >= since
    if until is not None:
        shipped = and_(shipped, ORDERS.c.shipped_at < until)
    with engine.connect() as conn:
        orders = conn.execute(
            select(ORDERS).where(shipped).order_by(ORDERS.c.shipped_at, ORDERS.c.id)
        ).all()
        if progress is not None:
            progress(f"{len(orders)} orders read")
        shipments = conn.execute(
            select(SHIPMENTS)
            .join(ORDERS, ORDERS.c.id == SHIPMENTS.c.order_pk)
            .where(shipped)
            .order_by(SHIPMENTS.c.id)
        ).all()
        events = conn.execute(
            select(
                SHIPMENTS.c.tracking_number,
                ORDERS.c.country,
                EVENTS.c.occurred_at,
                EVENTS.c.status,
                EVENTS.c.description,
                EVENTS.c.location,
            )
            .select_from(EVENTS)
            .join(SHIPMENTS, SHIPMENTS.c.id == EVENTS.c.shipment_id)
            .join(ORDERS, ORDERS.c.id == SHIPMENTS.c.order_pk)
            .where(shipped)
            .order_by(EVENTS.c.occurred_at, EVENTS.c.id)
        ).all()
        if progress is not None:
            progress(f"{len(events)} tracking events of {len(shipments)} shipments read")
        end = until or max(since, _newest(conn, shipped) or since)
    by_order: dict[int, list[Any]] = {}
    for shipment in shipments:
        by_order.setdefault(shipment.order_pk, []).append(shipment)
    return {
        "start": format_time(since),
        "until": format_time(end),
        "orders": [_order_record(o, by_order.get(o.id, [])) for o in orders],
        "parcels": _parcels(events),
        "order_events": [
            {"at": format_time(o.updated_at), "order_id": o.order_id, "event": kind.value}
            for o in orders
            if (kind := STATE_EVENTS.get(o.state)) is not None
        ],
    }


def _order_record(order: Any, shipments: list[Any]) -> dict[str, Any]:
    """The import record of a stored order: its fields, ship date and current tracking numbers.

    The state is left out (an order starts open; its state comes as an order event), and so are
    numbers a re-import removed, unless the order has no other.
    """
    record: dict[str, Any] = {
        name: order._mapping[name]
        for name in ORDER_FIELDS
        if order._mapping.get(name) not in (None, "")
    }
    if "value" in record:  # the import field's name; exact text, as DecimalText keeps it
        record["order_value"] = str(record.pop("value"))
    record["ship_date"] = order.shipped_at.isoformat()
    current = [s for s in shipments if s.poll_error != REMOVED] or shipments
    record["tracking_numbers"] = [s.tracking_number for s in current]
    carrier = next((s.carrier for s in current if s.carrier), "")
    if carrier:
        record["carrier"] = carrier
    return record


def _parcels(events: Iterable[Any]) -> list[dict[str, Any]]:
    """Each tracking number's stored events as a parcel timeline; a number without any is left
    out, so the emulators do not find it either.

    An event stored twice (the same number on two orders) is served once.
    """
    parcels: dict[str, dict[str, Any]] = {}
    seen: set[tuple[str, datetime, str, str, str]] = set()
    for e in events:
        key = (e.tracking_number, e.occurred_at, e.status, e.description, e.location)
        if key in seen:
            continue
        seen.add(key)
        parcel = parcels.setdefault(
            e.tracking_number,
            {"number": e.tracking_number, "destination": e.country, "events": []},
        )
        parcel["events"].append(
            {
                "at": format_time(e.occurred_at),
                "status": e.status,
                "description": e.description,
                "location": e.location,
            }
        )
    return list(parcels.values())


def _newest(conn: Any, shipped: ColumnElement[bool]) -> datetime | None:
    """The newest moment recorded for these orders: a change, a carrier answer or an event."""
    candidates = [
        conn.execute(select(func.max(ORDERS.c.updated_at)).where(shipped)).scalar(),
        conn.execute(
            select(func.max(SHIPMENTS.c.last_polled_at))
            .join(ORDERS, ORDERS.c.id == SHIPMENTS.c.order_pk)
            .where(shipped)
        ).scalar(),
        conn.execute(
            select(func.max(EVENTS.c.recorded_at))
            .select_from(EVENTS)
            .join(SHIPMENTS, SHIPMENTS.c.id == EVENTS.c.shipment_id)
            .join(ORDERS, ORDERS.c.id == SHIPMENTS.c.order_pk)
            .where(shipped)
        ).scalar(),
    ]
    found = [c for c in candidates if c is not None]
    return max(found) if found else None
