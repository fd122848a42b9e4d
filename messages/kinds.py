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
    # We wrote "we will write to you again on X" and nothing else went out by X: the promised word.
    PROMISED_UPDATE = "promised_update"
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


class Situation(StrEnum):
    """Where the buyer stands with the order, read from its shipments by the policy.

    It decides what a stage message may say (or whether it may go at all), and a message that is
    written differently per situation (`promised_update`) renders the variant of this name.
    """

    ON_ITS_WAY = "on_its_way"
    AWAITING_CUSTOMS_PAYMENT = "awaiting_customs_payment"  # the buyer must pay before delivery
    DELIVERY_FAILED = "delivery_failed"  # address problem, refused: the buyer must act
    AT_PICKUP_POINT = "at_pickup_point"  # waiting for the buyer to collect it
    NEVER_FOUND = "never_found"  # no carrier has ever shown the tracking number
    RETURNING = "returning"  # on its way back to the sender, or back already
    DELIVERED = "delivered"


# Situations in which the buyer is the one who must act: no "on its way" text then.
BUYER_MUST_ACT = frozenset(
    {Situation.AWAITING_CUSTOMS_PAYMENT, Situation.DELIVERY_FAILED, Situation.AT_PICKUP_POINT}
)
