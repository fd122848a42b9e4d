"""The message a log row stands for, made from the row: what the send job sends and `log show` shows.

Why one function for both: staff decide on what `parcelwatch log show` prints, so it must be the
very message the send job would send. And why from the row: the outreach row is the contract
between decide and send (ARCHITECTURE.md). Everything the buyer reads that the policy decided (the
situation, the date we promise to write again, the protection's end, when the parcel is expected)
or that staff chose (a refund offer's remedies) is a typed column of the row; nothing here derives
a date again. A row that cannot be written truthfully raises instead of being softened:
`PromisedDatePassed` for a promised date that is no longer ahead, `OfferNotComposed` for a refund
offer nobody has composed, `MissingTemplate` or another ValueError as the renderer raises them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from carriers.status import Status
from daemon.config import Config
from daemon.leases import OUTREACH, SHIPMENTS
from daemon.models import Order, TrackingEvent
from daemon.quiet import quiet_until
from messages.channels.base import OutgoingMessage, make_message_id, unsubscribe_target
from messages.context import MessageContext, StaffContext
from messages.kinds import Audience, Kind, Situation
from messages.remedies import Remedies
from messages.render import choose_locale, render

ORDERS = Order.__table__  # type: ignore[attr-defined]
EVENTS = TrackingEvent.__table__  # type: ignore[attr-defined]

# --- what is read: attributes shared by the ORM objects (`log show`) and the send job's rows ----


class RowLike(Protocol):
    """An outreach log row as compose reads it."""

    @property
    def id(self) -> int | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def audience(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def situation(self) -> str: ...
    @property
    def next_update_at(self) -> datetime | None: ...
    @property
    def protection_until(self) -> datetime | None: ...
    @property
    def expected_by(self) -> datetime | None: ...
    @property
    def remedies(self) -> str: ...


class OrderLike(Protocol):
    """An order as compose reads it."""

    @property
    def order_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def buyer_name(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def locale(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def shipped_at(self) -> datetime: ...
    @property
    def product(self) -> str: ...
    @property
    def quantity(self) -> int: ...


class ShipmentLike(Protocol):
    @property
    def tracking_number(self) -> str: ...
    @property
    def carrier(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def closed(self) -> bool: ...


class EventLike(Protocol):
    @property
    def description(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...


class PromisedDatePassed(ValueError):
    """The row promises to write again on a day that is today or already past for the buyer:
    sent now, the message would name a date the system will not keep."""

    def __init__(self, day: date) -> None:
        super().__init__(f"the date it promises ({day:%Y-%m-%d}) has passed")
        self.day = day


class OfferNotComposed(ValueError):
    """A refund offer with no remedies: it would offer what no person chose."""

    def __init__(self, row_id: int | None) -> None:
        super().__init__(
            f"refund offer {row_id} has no remedies chosen by staff "
            f"(`parcelwatch log compose {row_id} ...`)"
        )


def store_template_dir(config: Config) -> Path | None:
    """The seller's template folder (`store.template_dir`), whose files win over the package's."""
    return Path(config.store.template_dir) if config.store.template_dir else None


def buyer_timezone(config: Config, order: OrderLike) -> str:
    """The buyer's IANA zone: the order's own, else its destination window's."""
    return order.timezone or config.window(order.country).timezone


def buyer_day(moment: datetime | None, timezone: str) -> date | None:
    """The calendar day a stored UTC moment falls on for the buyer."""
    return None if moment is None else moment.astimezone(ZoneInfo(timezone)).date()


def promised_day(
    config: Config, order: OrderLike, moment: datetime | None, timezone: str
) -> date | None:
    """The buyer's day on which a message due at `moment` goes out, the day to promise: one due
    in the buyer's quiet hours leaves when they end, often the next morning."""
    if moment is None:
        return None
    quiet = config.window(order.country).quiet_hours
    resume = quiet_until(moment, timezone, quiet.start, quiet.end)
    return buyer_day(resume or moment, timezone)


def check_promised_date(
    config: Config, row: RowLike, order: OrderLike, timezone: str, now: datetime
) -> None:
    """Raise PromisedDatePassed when the row's next-update day is not after today, for the buyer."""
    promised = promised_day(config, order, row.next_update_at, timezone)
    if promised is not None and promised <= now.astimezone(ZoneInfo(timezone)).date():
        raise PromisedDatePassed(promised)


def compose_message(
    config: Config,
    row: RowLike,
    order: OrderLike,
    shipments: Sequence[ShipmentLike],
    last_event: EventLike | None,
    pickup_event: EventLike | None,
    now: datetime,
    template_dir: Path | None,
) -> tuple[OutgoingMessage, str]:
    """The message `row` sends now, and the locale it is written in.

    Raises PromisedDatePassed, OfferNotComposed, MissingTemplate (no template in the buyer's
    language) or another ValueError (a field the kind needs is not on the row, a content rule):
    the send job holds the row for staff with that reason, `log show` prints it.
    """
    kind = Kind(row.kind)
    audience = Audience(row.audience)
    store = config.store
    domain = store.from_address.rpartition("@")[2]
    message_id = make_message_id(f"outreach-{row.id}", domain)
    numbers = tuple(s.tracking_number for s in shipments if not s.closed or s.status)
    context: MessageContext | StaffContext
    if audience is Audience.STAFF:
        context = StaffContext(
            store_name=store.name,
            order_id=order.order_id,
            buyer_name=order.buyer_name,
            tracking_numbers=numbers,
            country=order.country,
            reason=row.reason,
            shipped_at=order.shipped_at.date(),
            days=(now - order.shipped_at).days,
            command_hint=f"parcelwatch orders story {order.order_id}",
        )
        locale = store.default_locale
        to_address, to_name = store.staff_email, store.name
    else:
        timezone = buyer_timezone(config, order)
        check_promised_date(config, row, order, timezone, now)
        if kind is Kind.REFUND_OFFER and not row.remedies:
            raise OfferNotComposed(row.id)
        context = buyer_context(config, row, order, shipments, last_event, pickup_event, timezone)
        locale = choose_locale(
            kind.value,
            order.locale or config.window(order.country).locale,
            order.country,
            store.default_locale,
            template_dir=template_dir,
            fallback=store.missing_template == "fallback",
        )
        to_address, to_name = order.email, order.buyer_name
    rendered = render(kind.value, context, locale, template_dir=template_dir)
    unsubscribe = unsubscribe_target(store.unsubscribe_url, store.reply_to or store.from_address)
    message = OutgoingMessage.compose(
        rendered,
        message_id=message_id,
        to_address=to_address,
        to_name=to_name,
        kind=kind.value,
        order_id=order.order_id,
        unsubscribe=unsubscribe if audience is Audience.BUYER else "",
    )
    return message, rendered.locale


def buyer_context(
    config: Config,
    row: RowLike,
    order: OrderLike,
    shipments: Sequence[ShipmentLike],
    last_event: EventLike | None,
    pickup_event: EventLike | None,
    timezone: str,
) -> MessageContext:
    """What a buyer message may say: the order's facts, and the row's decided dates and remedies."""
    store = config.store
    numbers = tuple(s.tracking_number for s in shipments if not s.closed or s.status)
    carriers = sorted({s.carrier for s in shipments if s.carrier})
    return MessageContext(
        buyer_name=order.buyer_name or "",
        order_id=order.order_id,
        store_name=store.name,
        tracking_numbers=numbers,
        carrier=", ".join(carriers),
        country=order.country,
        # status_text stays empty: the context wants words the buyer reads, and our status
        # names are English; the templates already say where the parcel is in the buyer's tongue.
        last_event_description=last_event.description if last_event else "",
        last_event_location=last_event.location if last_event else "",
        last_event_at=last_event.occurred_at if last_event else None,
        shipped_at=order.shipped_at.date(),
        expected_by=buyer_day(row.expected_by, timezone),
        next_update_on=promised_day(config, order, row.next_update_at, timezone),
        protection_until=buyer_day(row.protection_until, timezone),
        customs_variant=config.window(order.country).customs_variant,
        product=order.product,
        quantity=order.quantity,
        signature=store.signature,
        reply_address=store.reply_to or store.from_address,
        review_url=store.review_url.replace("{order_id}", order.order_id) or None,
        pickup_location=(
            (pickup_event.location or pickup_event.description) if pickup_event else None
        ),
        timezone=timezone,
        situation=row.situation or Situation.ON_ITS_WAY.value,
        remedies=Remedies.from_json(row.remedies),
        has_protection=order.source in store.protection_sources,
    )


def protection_task(config: Config, order: OrderLike, row: RowLike) -> tuple[str, str]:
    """The staff task for `extend_protection` (subject, text): extend the buyer's protection in the
    marketplace's seller center until the day the row says. Raises ValueError without that day."""
    window = config.window(order.country)
    until = buyer_day(row.protection_until, buyer_timezone(config, order))
    if until is None:
        raise ValueError(
            f"extend_protection {row.id} has no protection_until: nothing to extend to"
        )
    text = (
        f"Extend the buyer's protection (confirmation-of-receipt time) for order {order.order_id} "
        f"by {window.extension_days} days in the marketplace's seller center, so it runs until "
        f"{until:%Y-%m-%d}. The buyer is told in a separate message. Then run "
        f"`parcelwatch log mark-sent {row.id}`.\nWhy: {row.reason}"
    )
    return f"Extend buyer protection for order {order.order_id}", text


@dataclass(frozen=True)
class Material:
    """One log row with everything its message is made from."""

    row: Row[Any]
    order: Row[Any]
    shipments: list[Row[Any]]
    last_event: Row[Any] | None
    pickup_event: Row[Any] | None


def load_material(session: Session, row_ids: Sequence[int]) -> dict[int, Material]:
    """The rows `row_ids`, their orders, shipments and latest events (the latest at a pickup point
    too), by row id: five queries for a whole batch instead of five per message. The send job
    reads its claimed rows through this, and `log show` the row it shows, so both see the same."""
    rows = {
        r.id: r for r in session.execute(select(OUTREACH).where(OUTREACH.c.id.in_(row_ids))).all()
    }
    pks = {r.order_pk for r in rows.values()}
    orders = {o.id: o for o in session.execute(select(ORDERS).where(ORDERS.c.id.in_(pks))).all()}
    ships: dict[int, list[Row[Any]]] = {pk: [] for pk in pks}
    for ship in session.execute(
        select(SHIPMENTS).where(SHIPMENTS.c.order_pk.in_(pks)).order_by(SHIPMENTS.c.id)
    ).all():
        ships[ship.order_pk].append(ship)
    last = _latest_events(session, pks, None)
    pickup = _latest_events(session, pks, Status.AVAILABLE_FOR_PICKUP)
    return {
        row_id: Material(
            row,
            orders[row.order_pk],
            ships[row.order_pk],
            last.get(row.order_pk),
            pickup.get(row.order_pk),
        )
        for row_id, row in rows.items()
    }


def _latest_events(session: Session, pks: set[int], status: Status | None) -> dict[int, Row[Any]]:
    """Each order's most recent tracking event over all its shipments (of `status`, if given)."""
    ranked = (
        select(
            EVENTS.c.description,
            EVENTS.c.location,
            EVENTS.c.occurred_at,
            SHIPMENTS.c.order_pk,
            func.row_number()
            .over(partition_by=SHIPMENTS.c.order_pk, order_by=EVENTS.c.occurred_at.desc())
            .label("rank"),
        )
        .join(SHIPMENTS, SHIPMENTS.c.id == EVENTS.c.shipment_id)
        .where(SHIPMENTS.c.order_pk.in_(pks))
    )
    if status is not None:
        ranked = ranked.where(EVENTS.c.status == status)
    sub = ranked.subquery()
    found = session.execute(select(sub).where(sub.c.rank == 1)).all()
    return {event.order_pk: event for event in found}
