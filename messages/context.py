"""What a template may know: plain, frozen data built by the caller (the daemon) for one message.

`messages` never imports `daemon` or `carriers`; the send job copies what it has into these. Fields
that a kind cannot do without are checked by the renderer (`REQUIRED_FIELDS`), so a missing date is an
error at render time rather than a message that says "None".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from messages.remedies import Remedies

# The customs guidance variants the package ships (config `customs_variant`). An unknown variant
# renders the generic guidance.
CUSTOMS_VARIANTS = frozenset(
    {
        "brazil",
        "russia",
        "us",
        "uk",
        "eu",
        "mexico",
        "chile",
        "israel",
        "ukraine",
        "saudi",
        "australia",
        "canada",
        "generic",
    }
)

_VARIANT_SHAPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" (a folder), too long
        raise ValueError(f"timezone {name!r} is not an IANA time zone") from None


@dataclass(frozen=True)
class MessageContext:
    """Everything a buyer message may say about one order.

    Dates are the buyer-facing dates (the renderer formats them in the buyer's locale); datetimes must
    be timezone-aware and are shown in `timezone`.
    """

    buyer_name: str
    order_id: str
    store_name: str
    tracking_numbers: tuple[str, ...] = ()
    carrier: str = ""
    country: str = ""  # ISO 3166-1 alpha-2 destination
    status_text: str = ""  # where the parcel is, in words the buyer can read (optional)
    last_event_description: str = ""  # the carrier's own words, quoted as such
    last_event_location: str = ""
    last_event_at: datetime | None = None
    shipped_at: date | None = None
    expected_by: date | None = None  # realistic latest arrival for this destination
    next_update_on: date | None = None  # when we write again
    protection_until: date | None = None  # buyer protection end (new end after an extension)
    customs_variant: str = "generic"
    import_tax_paid: bool = False  # taxes collected at checkout (Remessa Conforme, IOSS, ...)
    product: str = ""
    quantity: int = 1
    signature: str = ""  # signed under the message; empty means "<store name>"
    reply_address: str = ""
    tracking_url: str | None = None  # never shown in customs messages
    review_url: str | None = None
    pickup_location: str | None = None
    pickup_until: date | None = None
    refund_amount: Decimal | None = None
    currency: str = ""
    timezone: str = "UTC"
    # The buyer's situation the message was decided on (`messages.kinds.Situation` values):
    # kinds written per situation render that variant.
    situation: str = "on_its_way"
    # A refund offer's options as staff composed them; None until they have.
    remedies: Remedies | None = None
    # The order's marketplace has a buyer protection the seller can extend (AliExpress): without
    # one, no message speaks of protection.
    has_protection: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "tracking_numbers", tuple(self.tracking_numbers))
        variant = self.customs_variant.strip().lower()
        if not _VARIANT_SHAPE.match(variant):
            variant = "generic"
        object.__setattr__(self, "customs_variant", variant)
        _check_timezone(self.timezone)

    def variables(self) -> dict[str, Any]:
        """The template variables: every field by name (shallow, no copies of the values)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class StaffContext:
    """What a staff alert or digest may say. Staff messages are written in English (see README)."""

    store_name: str
    order_id: str = ""
    buyer_name: str = ""
    tracking_numbers: tuple[str, ...] = ()
    carrier: str = ""
    country: str = ""
    reason: str = ""  # why the alert fired, in the daemon's words
    shipped_at: date | None = None
    days: int | None = None  # days since shipment without any tracking
    count: int = 0  # messages waiting for approval
    oldest_at: datetime | None = None  # oldest waiting approval
    since: datetime | None = None  # carrier outage start
    last_error: str = ""  # carrier outage: the last error, already free of secrets
    day: date | None = None  # the digest's day
    counts: tuple[tuple[str, int], ...] = ()  # digest figures: (label, number)
    items: tuple[str, ...] = ()  # one line each: orders at risk, approvals waiting, ...
    command_hint: str = ""  # e.g. "parcelwatch log list --state awaiting_approval"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tracking_numbers", tuple(self.tracking_numbers))
        object.__setattr__(self, "counts", tuple((str(k), int(v)) for k, v in self.counts))
        object.__setattr__(self, "items", tuple(self.items))
        _check_timezone(self.timezone)

    def variables(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
