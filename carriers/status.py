"""The one status vocabulary every carrier's codes are normalised to.

Each adapter keeps a table from its carrier's raw codes to these members; everything downstream
(the poll job, the policy, the log) speaks only this vocabulary, with the raw code kept beside it.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    INFO_RECEIVED = "info_received"  # label created / pre-advice, the carrier has no parcel yet
    IN_TRANSIT = "in_transit"
    CUSTOMS_HOLD = "customs_hold"  # in customs, nothing asked of the buyer (yet)
    CUSTOMS_PAYMENT_DUE = (
        "customs_payment_due"  # the buyer must pay duty/fees (Brazil: aguardando pagamento)
    )
    OUT_FOR_DELIVERY = "out_for_delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERY_FAILURE = "delivery_failure"  # attempt failed, address problem, refused
    DELIVERED = "delivered"
    RETURNING = "returning"  # on its way back to the sender
    RETURNED = "returned"  # handed back to the sender
    EXCEPTION = "exception"  # lost, damaged, destroyed, security hold
    NOT_FOUND = "not_found"  # the carrier knows nothing of the number (yet)
    EXPIRED = "expired"  # the carrier or aggregator stopped reporting

    @property
    def is_final(self) -> bool:
        """No further tracking is useful once a parcel reached one of these."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({Status.DELIVERED, Status.RETURNED})
