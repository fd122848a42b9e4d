"""The tables: orders, shipments, tracking events and the outreach log.

"Never twice" is a promise of the database, not of the code: a duplicate order, event or message
is a unique-constraint violation. Times are stored as UTC and come back timezone-aware.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Index, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlmodel import Column, Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware UTC; refuses naive datetimes so no local time sneaks in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # On SQLite the two steps above and the dialect's text conversion are one function each: the
    # jobs convert hundreds of thousands of times per pass, and the chain of three calls per value
    # was most of that. The text is the dialect's own format ("2026-11-10 12:00:00.000000").

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def to_text(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value!r} given to a UTC column")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return to_text

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or general is None:
            return general

        def from_text(value: Any) -> datetime | None:
            if value is None:
                return None
            try:
                parsed = datetime.fromisoformat(value)
            except (TypeError, ValueError):
                return general(value)  # not the dialect's text: convert as the dialect would
            if parsed.tzinfo is not None:
                return general(value)
            return parsed.replace(tzinfo=UTC)

        return from_text


class DecimalText(TypeDecorator[Decimal]):
    """A money amount stored as its exact text: SQLite has no decimal type, and a float would
    round a refund."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None or value == "" else Decimal(value)


def _utc(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class OrderState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    DISPUTED = "disputed"
    CANCELLED = "cancelled"
    OPTED_OUT = "opted_out"


class OutreachState(StrEnum):
    """Where a log row stands. planned -> (awaiting_approval -> approved) -> sending -> sent.

    `manual_pending` waits for staff to send it from the marketplace chat (`log mark-sent`);
    `needs_review` is a send whose outcome is unknown (crash mid-send): never re-sent blindly;
    `skipped` was due during a catch-up but superseded by a later stage; `withdrawn` was a pending
    refund offer made stale by new tracking; `suppressed` was stopped by a rule (opt-out, dispute);
    `held` is due but would not be true in the parcel's present situation (the buyer must act, the
    number was never found): the policy decides it again when the situation changes.
    """

    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    SKIPPED = "skipped"
    NEEDS_REVIEW = "needs_review"
    WITHDRAWN = "withdrawn"
    MANUAL_PENDING = "manual_pending"
    HELD = "held"


# States in which a row will still go out unless someone acts; used to suppress and withdraw.
PENDING_STATES = frozenset(
    {OutreachState.PLANNED, OutreachState.AWAITING_APPROVAL, OutreachState.APPROVED}
)


class Order(SQLModel, table=True):
    __tablename__ = "orders"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(index=True, unique=True, max_length=128)
    source: str = Field(default="manual", max_length=32)
    buyer_name: str = ""
    email: str = ""
    phone: str = ""
    channel: str = Field(default="", max_length=32)  # empty: the configured default channel
    locale: str = Field(default="", max_length=35)
    timezone: str = Field(default="", max_length=64)
    country: str = Field(index=True, max_length=2)
    shipped_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    promised_days: int | None = None
    product: str = ""
    quantity: int = 1
    # What the buyer paid, as the import gives it: the refund offer's full amount by default.
    value: Decimal | None = Field(default=None, sa_column=Column(DecimalText(), nullable=True))
    currency: str = Field(default="", max_length=3)
    state: str = Field(default=OrderState.OPEN, index=True, max_length=16)
    state_reason: str = ""
    customs_paused_days: int = 0
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    decide_after: datetime | None = _utc(index=True)


class Shipment(SQLModel, table=True):
    __tablename__ = "shipments"
    __table_args__ = (
        UniqueConstraint("order_pk", "tracking_number", name="uq_shipment_order_number"),
        Index("ix_shipments_due", "closed", "next_check_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Looked up through the unique constraint above, which starts with it: no index of its own.
    order_pk: int = Field(foreign_key="orders.id")
    tracking_number: str = Field(index=True, max_length=64)
    carrier: str = Field(default="", max_length=64)  # as imported ("correios", "yunexpress", ...)
    adapter: str = Field(default="", max_length=32)  # which tracking API watches it
    status: str = Field(default="", max_length=32)  # normalised vocabulary, empty until polled
    raw_status: str = ""
    status_at: datetime | None = _utc()
    last_event_at: datetime | None = _utc()
    delivered_at: datetime | None = _utc()
    # The carrier's first and latest answer (found or not); a failed poll sets neither.
    first_polled_at: datetime | None = _utc()
    last_polled_at: datetime | None = _utc()
    next_check_at: datetime | None = _utc()
    closed: bool = False
    poll_error: str = ""
    lease_owner: str = Field(default="", max_length=64)
    lease_until: datetime | None = _utc()
    lease_token: int = 0


class TrackingEvent(SQLModel, table=True):
    __tablename__ = "tracking_events"
    __table_args__ = (UniqueConstraint("shipment_id", "event_key", name="uq_event_shipment_key"),)

    id: int | None = Field(default=None, primary_key=True)
    # Looked up through uq_event_shipment_key, which starts with it: no index of its own.
    shipment_id: int = Field(foreign_key="shipments.id")
    event_key: str = Field(max_length=64)  # hash of time, code and text: the dedup key
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(max_length=32)
    raw_code: str = ""
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    location: str = ""
    source: str = ""  # which carrier leg reported it (first mile, last mile)
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Outreach(SQLModel, table=True):
    """One row of the outreach log: a message or action, why it was decided, and where it stands."""

    __tablename__ = "outreach"
    __table_args__ = (
        UniqueConstraint("order_pk", "kind", "trigger", name="uq_outreach_order_kind_trigger"),
        Index("ix_outreach_ready", "state", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Looked up through the unique constraint above, which starts with it: no index of its own.
    order_pk: int = Field(foreign_key="orders.id")
    kind: str = Field(max_length=48)
    trigger: str = Field(max_length=128)
    audience: str = Field(default="buyer", max_length=16)
    channel: str = Field(default="", max_length=32)
    state: str = Field(default=OutreachState.PLANNED, max_length=24)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    tracking_snapshot: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    needs_approval: bool = False
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    decided_by: str = ""  # "approved by"/"rejected by" for people; empty for the daemon
    decided_at: datetime | None = _utc()
    decision_note: str = ""
    # What the policy decided the buyer reads, written by decide (or by staff) and only read by
    # send: the situation the message was decided on, the date we promise to write again (or by
    # which a person writes), the protection's end, and when the parcel is expected.
    situation: str = Field(default="", max_length=32)
    next_update_at: datetime | None = _utc()
    protection_until: datetime | None = _utc()
    expected_by: datetime | None = _utc()
    # A refund offer's options as staff composed them (`messages.remedies.Remedies` as JSON).
    remedies: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    locale: str = ""
    subject: str = ""
    body_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    message_id: str = ""
    attempts: int = 0
    next_attempt_at: datetime | None = _utc()
    last_error: str = ""
    sent_at: datetime | None = _utc()
    lease_owner: str = Field(default="", max_length=64)
    lease_until: datetime | None = _utc()
    lease_token: int = 0


class Alarm(SQLModel, table=True):
    """Something only a person can fix (revoked key, exhausted quota, carrier down), one row a source.

    Raised again, it updates the same row (count, last time); cleared when the source works again.
    """

    __tablename__ = "alarms"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(unique=True, max_length=64)  # e.g. "carrier:seventeentrack"
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    count: int = 1
    first_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    cleared_at: datetime | None = _utc()
    notified_at: datetime | None = _utc()


class CarrierPace(SQLModel, table=True):
    """One row per carrier: the next free request slot and today's count, shared by every daemon.

    A carrier's rate limit is the carrier's, not one process's: daemons reserve request slots here.
    Times are Unix seconds of the wall clock (rate limits are about real time, even on a virtual one).
    """

    __tablename__ = "carrier_pace"

    carrier: str = Field(primary_key=True, max_length=32)
    next_at: float = 0.0
    day: str = Field(default="", max_length=10)
    used: int = 0


def utcnow() -> datetime:
    """The real clock; code that decides takes `now` as an argument instead of calling this."""
    return datetime.now(UTC)
