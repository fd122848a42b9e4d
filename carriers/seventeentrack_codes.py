"""17TRACK codes: the one table from sub-status to our `Status`, and the API's error codes.

Source: `reference/carrier-apis.md` §1.4 (9 main statuses, 30 sub-statuses, from 17TRACK's help
center) and the error-code table. A main status alone (sub-status missing or new to us) falls back
to its `<Main>_Other` row, so there is still exactly one table to read and change.
"""

from __future__ import annotations

from collections.abc import Mapping

from carriers.status import Status

S = Status

STATUS_TABLE: Mapping[str, Status] = {
    # NotFound: 17TRACK has nothing from the carrier (yet), or the number is not valid for it.
    "NotFound_Other": S.NOT_FOUND,
    "NotFound_InvalidCode": S.NOT_FOUND,  # the adapter reports it as InvalidNumber
    "InfoReceived": S.INFO_RECEIVED,
    "InTransit_PickedUp": S.IN_TRANSIT,
    "InTransit_Other": S.IN_TRANSIT,
    "InTransit_Departure": S.IN_TRANSIT,  # left the origin country's port
    "InTransit_Arrival": S.IN_TRANSIT,  # arrived at the destination country's port
    "InTransit_CustomsProcessing": S.CUSTOMS_HOLD,
    "InTransit_CustomsReleased": S.IN_TRANSIT,
    "InTransit_CustomsRequiringInformation": S.CUSTOMS_PAYMENT_DUE,  # duty, fees or papers due
    "Expired_Other": S.EXPIRED,  # no news for a long time; 17TRACK stops tracking
    "AvailableForPickup_Other": S.AVAILABLE_FOR_PICKUP,
    "OutForDelivery_Other": S.OUT_FOR_DELIVERY,
    "DeliveryFailure_Other": S.DELIVERY_FAILURE,
    "DeliveryFailure_NoBody": S.DELIVERY_FAILURE,  # nobody at home
    "DeliveryFailure_Security": S.DELIVERY_FAILURE,
    "DeliveryFailure_Rejected": S.DELIVERY_FAILURE,  # refused by the addressee
    "DeliveryFailure_InvalidAddress": S.DELIVERY_FAILURE,
    "Delivered_Other": S.DELIVERED,
    "Exception_Other": S.EXCEPTION,
    "Exception_Returning": S.RETURNING,
    "Exception_Returned": S.RETURNED,
    "Exception_NoBody": S.DELIVERY_FAILURE,  # an attempt failed for want of anyone to take it
    "Exception_Security": S.EXCEPTION,  # security hold
    "Exception_Damage": S.EXCEPTION,
    "Exception_Rejected": S.DELIVERY_FAILURE,  # refused: the buyer must be asked, like a failure
    "Exception_Delayed": S.IN_TRANSIT,  # late but moving; the policy's windows handle lateness
    "Exception_Lost": S.EXCEPTION,
    "Exception_Destroyed": S.EXCEPTION,
    "Exception_Cancel": S.EXCEPTION,
}

MAIN_STATUSES = (
    "NotFound",
    "InfoReceived",
    "InTransit",
    "Expired",
    "AvailableForPickup",
    "OutForDelivery",
    "DeliveryFailure",
    "Delivered",
    "Exception",
)

# `stage` / milestone keys name the same moments as sub-statuses; an event without a sub-status is
# read through the sub-status its stage corresponds to, so the table above stays the only mapping.
STAGE_AS_SUB_STATUS: Mapping[str, str] = {
    "InfoReceived": "InfoReceived",
    "PickedUp": "InTransit_PickedUp",
    "Departure": "InTransit_Departure",
    "Arrival": "InTransit_Arrival",
    "AvailableForPickup": "AvailableForPickup_Other",
    "OutForDelivery": "OutForDelivery_Other",
    "Delivered": "Delivered_Other",
    "Returning": "Exception_Returning",
    "Returned": "Exception_Returned",
}


def status_for(main: str | None, sub: str | None) -> Status | None:
    """Our status for a 17TRACK (main, sub-status) pair; None if neither is known."""
    if sub and sub in STATUS_TABLE:
        return STATUS_TABLE[sub]
    if main:
        return STATUS_TABLE.get(f"{main}_Other") or STATUS_TABLE.get(main)
    if sub and "_" in sub:  # an unknown sub-status still names its main status
        return status_for(sub.split("_", 1)[0], None)
    return None


# -- error codes (§1.4) --------------------------------------------------------------------------
NO_INFO_YET = -18019909
NOT_REGISTERED = -18019902
INVALID_FORMAT = -18010012
ALREADY_REGISTERED = -18019901
CARRIER_NOT_DETECTED = -18019903
RETRACK_NOT_ALLOWED = -18019904
INTERNAL_ERROR = -18010003

# Codes only a person can fix: raise CarrierAlarm, never retry.
ALARM_CODES: Mapping[int, str] = {
    -18010001: "IP address not in the 17TRACK whitelist",
    -18010002: "invalid 17TRACK access key",
    -18010004: "17TRACK account disabled",
    -18010005: "unauthorized access to 17TRACK",
    -18019907: "17TRACK daily tracking limit exceeded",
    -18019908: "17TRACK quota exhausted",
}
