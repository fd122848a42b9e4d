"""Every kind of message or action parcelwatch can produce, and who it is addressed to.

This is the one list of kinds: the policy emits them, config names them (`approval_required`),
and each buyer and staff kind has a template folder entry of the same name.
"""

from __future__ import annotations

from enum import StrEnum


class Audience(StrEnum):
    BUYER = "buyer"
    STAFF = "staff"
    MARKETPLACE = "marketplace"


class Kind(StrEnum):
    # Stage messages, counted from the ship date by the destination's window.
    TRACKING_UPDATE = "tracking_update"
    REASSURANCE = "reassurance"
    EXTENSION = "extension"  # the buyer is told their protection was extended
    REFUND_OFFER = "refund_offer"
    REFUND_FOLLOWUP = "refund_followup"
    # Event messages, from tracking.
    CUSTOMS_HOLD = "customs_hold"
    CUSTOMS_PAYMENT_DUE = "customs_payment_due"
    RETURNED_TO_SENDER = "returned_to_sender"
    DELIVERY_FAILURE = "delivery_failure"
    READY_FOR_PICKUP = "ready_for_pickup"
    PICKUP_REMINDER = "pickup_reminder"
    DELIVERED = "delivered"
    REVIEW_REQUEST = "review_request"
    TRACKING_NOT_FOUND = "tracking_not_found"
    # Actions on the marketplace, carried out rather than written.
    EXTEND_PROTECTION = "extend_protection"
    # Staff alerts.
    STAFF_INVALID_TRACKING = "staff_invalid_tracking"
    STAFF_TRACKING_NOT_FOUND = "staff_tracking_not_found"
    STAFF_APPROVALS_WAITING = "staff_approvals_waiting"
    STAFF_CARRIER_OUTAGE = "staff_carrier_outage"
    STAFF_DAILY_DIGEST = "staff_daily_digest"

    @property
    def audience(self) -> Audience:
        if self.value.startswith("staff_"):
            return Audience.STAFF
        if self is Kind.EXTEND_PROTECTION:
            return Audience.MARKETPLACE
        return Audience.BUYER


ALL_KINDS = frozenset(kind.value for kind in Kind)
BUYER_KINDS = frozenset(kind for kind in Kind if kind.audience is Audience.BUYER)
STAFF_KINDS = frozenset(kind for kind in Kind if kind.audience is Audience.STAFF)
