"""A 17TRACK v2.2 emulator: registration, `gettrackinfo` with every provider leg, stop and retrack.

Serves `POST /track/v2.2/<endpoint>` for `register`, `gettrackinfo`, `retrack`, `stoptrack`,
`deletetrack`, `gettracklist` and `getquota`, in the shapes of `reference/carrier-apis.md` §1.3–1.7.

How the scenario is rendered:

* Each event's sub-status is its `raw["seventeentrack"]` code if given, else `DEFAULT_SUB_STATUS`
  for its neutral status; the main status is the sub-status's prefix.
* `first_mile` events appear under the origin post (China Post, key 3011), `last_mile` events
  under the destination post (Correios Brazil 2151, Russian Post 18031, USPS 21051, ...), last
  mile listed first, events newest first — like 17TRACK does.
* Numbers start unregistered: `gettrackinfo` rejects them with -18019902 until `register`.
  Registered numbers without visible events get -18019909. Numbers that are not 5–50 letters and
  digits, or scenario parcels with `"invalid": true`, get -18010012.
* After 30 days (virtual clock) without a new event a registered, undelivered number is *stopped*:
  it reads `Expired`/`Expired_Other` with the events it had then, until `retrack`.
* The key in header `17token` must equal `token` (HTTP 401 otherwise); `quota` limits how many
  numbers may be registered (None: unlimited), after which `register` rejects with -18019908.

Parcel quirks (scenario `quirks`): `time_raw_string` (events carry only a plain-string
`time_raw`), `duplicate_entry` (a NotFound entry for another carrier precedes the real one),
`no_event_sub_status` (events carry only `stage`).
Faults: `auth` → HTTP 401; `quota` → every item rejected -18019908; `unknown` → every item
rejected -18019909.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carriers.emulators.faults import FaultKind
from carriers.emulators.scenario import Scenario, ScenarioEvent, ScenarioParcel, format_time
from carriers.emulators.server import EmulatorServer, Request, Response
from carriers.numbers import normalise
from carriers.status import Status

S = Status

# The emulator's own code table: which sub-status 17TRACK would show for each neutral status.
DEFAULT_SUB_STATUS: Mapping[Status, str] = {
    S.INFO_RECEIVED: "InfoReceived",
    S.IN_TRANSIT: "InTransit_Other",
    S.CUSTOMS_HOLD: "InTransit_CustomsProcessing",
    S.CUSTOMS_PAYMENT_DUE: "InTransit_CustomsRequiringInformation",
    S.OUT_FOR_DELIVERY: "OutForDelivery_Other",
    S.AVAILABLE_FOR_PICKUP: "AvailableForPickup_Other",
    S.DELIVERY_FAILURE: "DeliveryFailure_Other",
    S.DELIVERED: "Delivered_Other",
    S.RETURNING: "Exception_Returning",
    S.RETURNED: "Exception_Returned",
    S.EXCEPTION: "Exception_Other",
    S.NOT_FOUND: "NotFound_Other",
    S.EXPIRED: "Expired_Other",
}

# Sub-status → stage (milestone key), where one applies.
_STAGE: Mapping[str, str] = {
    "InfoReceived": "InfoReceived",
    "InTransit_PickedUp": "PickedUp",
    "InTransit_Departure": "Departure",
    "InTransit_Arrival": "Arrival",
    "AvailableForPickup_Other": "AvailableForPickup",
    "OutForDelivery_Other": "OutForDelivery",
    "Delivered_Other": "Delivered",
    "Exception_Returning": "Returning",
    "Exception_Returned": "Returned",
}

# (key, name, alias, country) of the posts a scenario's legs are shown under.
_POSTS: Mapping[str, tuple[int, str, str]] = {
    "CN": (3011, "China Post", "China Post"),
    "BR": (2151, "Correios Brazil", "Correios"),
    "RU": (18031, "Russian Post", "Russian Post"),
    "US": (21051, "USPS", "USPS"),
    "DE": (7041, "DHL Paket", "DHL"),
}

STOP_AFTER = timedelta(days=30)
MAX_ITEMS = 40
_VALID = re.compile(r"^[A-Z0-9]{5,50}$")


@dataclass
class Registration:
    registered_at: datetime
    stopped_at: datetime | None = None
    retracked_at: datetime | None = None


def _err(number: str, code: int, message: str) -> dict[str, Any]:
    return {"number": number, "error": {"code": code, "message": message}}


def _envelope(accepted: list[Any], rejected: list[Any], code: int = 0) -> Response:
    return Response.json({"code": code, "data": {"accepted": accepted, "rejected": rejected}})


class SeventeenTrackEmulator(EmulatorServer):
    """17TRACK v2.2 on loopback."""

    name = "seventeentrack"
    prefix = "/track/v2.2"

    def __init__(
        self,
        scenario: Scenario | Mapping[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        now: datetime | None = None,
        token: str | None = "test-token",
        quota: int | None = None,
    ) -> None:
        self.token = token
        self.quota = quota
        self.registrations: dict[str, Registration] = {}
        super().__init__(scenario, host=host, port=port, now=now)

    def reset_state(self) -> None:
        self.registrations = {}

    def state(self) -> dict[str, Any]:
        return {
            "registered": {
                n: {"stopped": r.stopped_at is not None} for n, r in self.registrations.items()
            },
            "quota_remaining": self.quota,
        }

    def register(self, *numbers: str) -> None:
        """Register numbers directly (as if done earlier), without a request."""
        with self.lock:
            for number in numbers:
                self.registrations.setdefault(normalise(number), Registration(self.now()))

    # -- requests ------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return Response.json({"error": "method not allowed"}, 405)
        if request.fault is FaultKind.AUTH or (
            self.token is not None and request.headers.get("17token") != self.token
        ):
            return Response.json({"code": 401, "message": "Unauthorized"}, 401)
        endpoint = request.endpoint
        handlers = {
            "/register": self._register,
            "/gettrackinfo": self._gettrackinfo,
            "/retrack": self._retrack,
            "/stoptrack": self._stoptrack,
            "/deletetrack": self._deletetrack,
        }
        if endpoint == "/getquota":
            return Response.json({"code": 0, "data": {"quota_remain": self.quota}})
        if endpoint == "/gettracklist":
            return self._gettracklist()
        if endpoint not in handlers:
            return Response.json({"error": "not found"}, 404)
        try:
            items = request.json()
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("number"), str) for i in items
        ):
            return _envelope([], [], code=-18010013)
        self.stats.record_batch(request.path, len(items))
        if len(items) > MAX_ITEMS:
            return _envelope([], [], code=-18010014)
        numbers = [normalise(i["number"]) for i in items]
        if request.fault is FaultKind.QUOTA:
            return _envelope([], [_err(n, -18019908, "Quota exhausted.") for n in numbers])
        if request.fault is FaultKind.UNKNOWN:
            return _envelope(
                [], [_err(n, -18019909, "No tracking information at this time.") for n in numbers]
            )
        return handlers[endpoint](numbers)

    def _invalid(self, number: str) -> bool:
        parcel = self.scenario.get(number)
        return not _VALID.match(number) or (parcel is not None and parcel.invalid)

    def _register(self, numbers: list[str]) -> Response:
        accepted, rejected = [], []
        for n in numbers:
            if self._invalid(n):
                rejected.append(_err(n, -18010012, f"The format of '{n}' is invalid."))
            elif n in self.registrations:
                rejected.append(
                    _err(n, -18019901, f"The tracking number '{n}' has been registered.")
                )
            elif self.quota is not None and self.quota <= 0:
                rejected.append(_err(n, -18019908, "Quota exhausted."))
            else:
                if self.quota is not None:
                    self.quota -= 1
                self.registrations[n] = Registration(self.now())
                key = self._last_mile(self.scenario.get(n))[0]
                accepted.append({"origin": 1, "number": n, "carrier": key, "tag": None})
        return _envelope(accepted, rejected)

    def _gettrackinfo(self, numbers: list[str]) -> Response:
        accepted, rejected = [], []
        for n in numbers:
            registration = self.registrations.get(n)
            if self._invalid(n) and registration is None:
                rejected.append(_err(n, -18010012, f"The format of '{n}' is invalid."))
                continue
            if registration is None:
                rejected.append(
                    _err(
                        n,
                        -18019902,
                        f"The tracking number '{n}' does not register, please register first.",
                    )
                )
                continue
            parcel = self.scenario.get(n)
            visible = parcel.visible(self.now()) if parcel else []
            if parcel is None or not visible:
                rejected.append(_err(n, -18019909, "No tracking information at this time."))
                continue
            self._maybe_stop(registration, parcel)
            if "duplicate_entry" in parcel.quirks:
                accepted.append(self._not_found_entry(n))
            accepted.append(self._entry(parcel, registration))
        return _envelope(accepted, rejected)

    def _retrack(self, numbers: list[str]) -> Response:
        accepted, rejected = [], []
        for n in numbers:
            registration = self.registrations.get(n)
            if registration is None:
                rejected.append(_err(n, -18019902, f"The tracking number '{n}' does not register."))
            elif registration.stopped_at is None:
                rejected.append(
                    _err(
                        n, -18019904, "Retrack is not allowed. You can only retrack stopped number."
                    )
                )
            else:
                registration.stopped_at = None
                registration.retracked_at = self.now()
                key = self._last_mile(self.scenario.get(n))[0]
                accepted.append({"number": n, "carrier": key})
        return _envelope(accepted, rejected)

    def _stoptrack(self, numbers: list[str]) -> Response:
        accepted, rejected = [], []
        for n in numbers:
            registration = self.registrations.get(n)
            if registration is None:
                rejected.append(_err(n, -18019902, f"The tracking number '{n}' does not register."))
            else:
                registration.stopped_at = registration.stopped_at or self.now()
                accepted.append({"number": n, "carrier": self._last_mile(self.scenario.get(n))[0]})
        return _envelope(accepted, rejected)

    def _deletetrack(self, numbers: list[str]) -> Response:
        accepted = [{"number": n} for n in numbers if self.registrations.pop(n, None)]
        rejected = [
            _err(n, -18019902, f"The tracking number '{n}' does not register.")
            for n in numbers
            if n not in {a["number"] for a in accepted}
        ]
        return _envelope(accepted, rejected)

    def _gettracklist(self) -> Response:
        items = [
            {
                "number": n,
                "tracking_status": "Stopped" if r.stopped_at else "Tracking",
                "register_time": format_time(r.registered_at),
                "stop_track_time": format_time(r.stopped_at) if r.stopped_at else None,
                "is_retracked": r.retracked_at is not None,
            }
            for n, r in self.registrations.items()
        ]
        page = {"data_total": len(items), "page_total": 1, "page_no": 1, "page_size": len(items)}
        return Response.json({"code": 0, "data": {"accepted": items, "rejected": []}, "page": page})

    # -- rendering -----------------------------------------------------------------------------

    def _maybe_stop(self, registration: Registration, parcel: ScenarioParcel) -> None:
        """Stop the number if, since (re)registration, 30 days passed without an event."""
        if registration.stopped_at is not None:
            return
        anchor = registration.retracked_at or registration.registered_at
        before = parcel.visible(anchor)
        if before and _sub_status(before[-1]).startswith("Delivered"):
            return
        last = anchor
        for event in parcel.visible(self.now()):
            if event.at <= anchor:
                continue
            if event.at - last > STOP_AFTER:
                break
            if _sub_status(event).startswith("Delivered"):
                return
            last = event.at
        if self.now() - last > STOP_AFTER:
            registration.stopped_at = last + STOP_AFTER

    def _last_mile(self, parcel: ScenarioParcel | None) -> tuple[int, str, str]:
        country = (parcel.destination if parcel else None) or ""
        return _POSTS.get(country, (0, f"Post {country}".strip(), country or "Post"))

    def _first_mile(self, parcel: ScenarioParcel) -> tuple[int, str, str]:
        return _POSTS.get(parcel.origin, (0, f"Post {parcel.origin}", parcel.origin))

    def _entry(self, parcel: ScenarioParcel, registration: Registration) -> dict[str, Any]:
        cutoff = registration.stopped_at or self.now()
        visible = parcel.visible(cutoff) or parcel.visible(self.now())[:1]
        quirks = parcel.quirks
        latest_sub = "Expired_Other" if registration.stopped_at else _sub_status(visible[-1])
        providers = []
        for leg, post in (
            ("last_mile", self._last_mile(parcel)),
            ("first_mile", self._first_mile(parcel)),
        ):
            events = [e for e in reversed(visible) if e.leg == leg]
            if not events:
                continue
            key, name, alias = post
            providers.append(
                {
                    "provider": {"key": key, "name": name, "alias": alias, "tel": None},
                    "provider_lang": None,
                    "service_type": None,
                    "latest_sync_status": "Success",
                    "latest_sync_time": format_time(self.now()),
                    "events": [_event(e, quirks) for e in events],
                }
            )
        latest_event = _event(visible[-1], quirks)
        return {
            "number": parcel.number,
            "carrier": self._last_mile(parcel)[0] or self._first_mile(parcel)[0],
            "param": None,
            "tag": None,
            "track_info": {
                "shipping_info": {
                    "shipper_address": {"country": parcel.origin},
                    "recipient_address": {"country": parcel.destination},
                },
                "latest_status": {
                    "status": _main(latest_sub),
                    "sub_status": latest_sub,
                    "sub_status_descr": None,
                },
                "latest_event": latest_event,
                "time_metrics": {
                    "days_after_last_update": (self.now() - visible[-1].at).days,
                },
                "milestone": [],
                "misc_info": {},
                "tracking": {
                    "providers_hash": zlib.crc32(parcel.number.encode()),
                    "providers": providers,
                },
            },
        }

    def _not_found_entry(self, number: str) -> dict[str, Any]:
        return {
            "number": number,
            "carrier": 190271,
            "track_info": {
                "latest_status": {"status": "NotFound", "sub_status": "NotFound_Other"},
                "latest_event": None,
                "tracking": {"providers": []},
            },
        }


def _sub_status(event: ScenarioEvent) -> str:
    return event.raw_code("seventeentrack") or DEFAULT_SUB_STATUS[event.status]


def _main(sub_status: str) -> str:
    return sub_status.split("_", 1)[0]


def _event(event: ScenarioEvent, quirks: frozenset[str]) -> dict[str, Any]:
    sub = _sub_status(event)
    local = event.local_time()
    rendered: dict[str, Any] = {
        "time_iso": local.isoformat(),
        "time_utc": format_time(event.at),
        "time_raw": {
            "date": local.strftime("%Y-%m-%d"),
            "time": local.strftime("%H:%M:%S"),
            "timezone": event.utc_offset,
        },
        "description": event.description or sub,
        "location": event.location or None,
        "stage": _STAGE.get(sub),
        "sub_status": sub,
        "address": {"country": None},
    }
    if "time_raw_string" in quirks:
        rendered.update(
            time_iso=None, time_utc=None, time_raw=event.at.strftime("%Y-%m-%d %H:%M:%S")
        )
    if "no_event_sub_status" in quirks:
        rendered["sub_status"] = None
    return rendered
