"""17TRACK Tracking API v2.2: the aggregator for every number without a direct carrier adapter.

Wire facts (`reference/carrier-apis.md` §1): every endpoint is `POST <base>/<endpoint>` with a JSON
array of at most 40 `{"number": ...}` items and the key in header `17token`; 3 requests per second
per key; answers are `{"code": 0, "data": {"accepted": [...], "rejected": [...]}}`, with business
errors as HTTP 200 and per-number `rejected[].error.code`.

How one batch is tracked:

1. `gettrackinfo` for the batch (costs no quota).
2. Numbers rejected as not registered (-18019902) are `register`ed (costs quota once per number;
   -18019901 "already registered" is fine) and asked again. A fresh registration usually has no
   data yet (-18019909) and comes back as `NotFound` until 17TRACK has fetched the carrier.
3. 17TRACK stops tracking a number after 30 days without news (webhook `TRACKING_STOPPED`) and then
   reports it as `Expired`. A parcel we still watch must stay watched, so every `Expired` answer is
   followed by `retrack` and one more `gettrackinfo`; if 17TRACK still says `Expired`, that is
   reported (status EXPIRED); the same number is retracked at most once per `RETRACK_INTERVAL`. We read `Expired` from `gettrackinfo`
   rather than calling `gettracklist` for `tracking_status == "Stopped"`, which would double the
   requests of every poll to learn the same thing.

Answers are read with `STATUS_TABLE` (`carriers.seventeentrack_codes`); events come from every
provider leg (first mile China Post, last mile Correios...), each event's `source` naming its
provider. `time_raw` is sometimes a plain string: times are read from `time_utc`, then `time_iso`,
then `time_raw` (a string or naive time without an offset is taken as UTC); an event with no
readable time is dropped and logged. If 17TRACK returns several accepted entries for one number
(one per carrier it guessed), the first one that is not `NotFound` wins.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from operator import attrgetter
from typing import Any, NotRequired

import httpx
from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic reads typing's TypedDict from Python 3.12 only

from carriers.base import (
    AdapterSettings,
    CarrierAlarm,
    InvalidNumber,
    NotFound,
    RateLimit,
    TemporaryFailure,
    Tracked,
    TrackEvent,
    TrackResult,
)
from carriers.httpadapter import HttpAdapter, MalformedResponse
from carriers.numbers import normalise
from carriers.seventeentrack_codes import (
    ALARM_CODES,
    ALREADY_REGISTERED,
    CARRIER_NOT_DETECTED,
    INVALID_FORMAT,
    NO_INFO_YET,
    NOT_REGISTERED,
    RETRACK_NOT_ALLOWED,
    STAGE_AS_SUB_STATUS,
    status_for,
)
from carriers.status import Status

log = logging.getLogger(__name__)

RETRACK_INTERVAL = timedelta(hours=12)


# -- wire types (only the fields we read; everything else is ignored) ---------------------------
#
# TypedDicts validated by pydantic (`_ENVELOPE.validate_json`), not models: the same checks and the
# same error naming the field (`data.accepted.3.number  Input should be a valid string`), but plain
# dicts come out instead of a model instance per entry, leg and event, which made reading an answer
# take half again as long. (A hand-written check after `json.loads` was slower still.) Optional
# fields missing from the answer are missing from the dict too: read them with `.get`.


class ApiError(TypedDict):
    code: int
    message: NotRequired[str | None]


class Rejected(TypedDict):
    number: str
    error: ApiError


class Provider(TypedDict, total=False):
    key: int | None
    name: str | None
    alias: str | None


class Event(TypedDict, total=False):
    time_iso: str | None
    time_utc: str | None
    time_raw: dict[str, str | None] | str | None
    description: str | None
    location: str | None
    stage: str | None
    sub_status: str | None


class ProviderTrack(TypedDict, total=False):
    provider: Provider | None
    events: list[Event] | None


class Tracking(TypedDict, total=False):
    providers: list[ProviderTrack] | None


class LatestStatus(TypedDict, total=False):
    status: str | None
    sub_status: str | None


class TrackInfo(TypedDict, total=False):
    latest_status: LatestStatus | None
    tracking: Tracking | None


class Accepted(TypedDict):
    number: str
    carrier: NotRequired[int | None]
    track_info: NotRequired[TrackInfo | None]


class Data(TypedDict, total=False):
    accepted: list[Accepted] | None
    rejected: list[Rejected] | None
    errors: list[ApiError] | None


class Envelope(TypedDict):
    code: int
    data: NotRequired[Data | None]


_ENVELOPE = TypeAdapter(Envelope)
EVENT = TypeAdapter(Event)
"""One event checked on its own (tests read times through it)."""


def _main_status(entry: Accepted) -> str | None:
    info = entry.get("track_info")
    latest = info.get("latest_status") if info else None
    return latest.get("status") if latest else None


# -- times ------------------------------------------------------------------------------------------

_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$")
_RAW_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%Y-%m-%d",
)


def _iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


def _offset(text: str | None) -> timezone:
    """`+08:00` / `-0300` / `Z` → timezone; UTC when absent or unreadable."""
    match = _OFFSET.match((text or "").strip())
    if not match:
        return UTC
    sign = -1 if match.group(1) == "-" else 1
    return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0)))


def _as_utc(value: datetime, offset: str | None = None) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=_offset(offset))
    return value.astimezone(UTC)


def _raw_string(text: str) -> datetime | None:
    parsed = _iso(text)
    if parsed is not None:
        return parsed
    for fmt in _RAW_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    return None


def event_time(event: Event) -> datetime | None:
    """The event's moment in UTC from whichever of 17TRACK's three time fields is readable."""
    utc = _iso(event.get("time_utc"))
    if utc is not None:  # the usual case, first: nothing else needs reading
        return _as_utc(utc)
    raw = event.get("time_raw")
    raw_offset = raw.get("timezone") if isinstance(raw, dict) else None
    local = _iso(event.get("time_iso"))
    if local is not None:
        return _as_utc(local, raw_offset)
    if isinstance(raw, str):
        parsed = _raw_string(raw)
        return _as_utc(parsed) if parsed else None
    if isinstance(raw, dict) and raw.get("date"):
        parsed = _raw_string(f"{raw['date']} {raw.get('time') or '00:00:00'}")
        return _as_utc(parsed, raw_offset) if parsed else None
    return None


# -- the adapter ---------------------------------------------------------------------------------


class SeventeenTrackAdapter(HttpAdapter):
    """17TRACK v2.2 through `gettrackinfo`, registering and retracking numbers as needed."""

    name = "seventeentrack"
    batch_size = 40
    rate_limit = RateLimit(per_second=3)

    def __init__(self, settings: AdapterSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._retracked: dict[str, datetime] = {}

    def auth_headers(self) -> dict[str, str]:
        return {"17token": self.settings.api_key, "Content-Type": "application/json"}

    async def track_batch(self, numbers: Sequence[str]) -> list[TrackResult]:
        results, unregistered, expired = self._read_info(await self._call("gettrackinfo", numbers))
        if unregistered:
            refused, registered = await self._register(unregistered)
            results.update(refused)
            if registered:
                again, still, more_expired = self._read_info(
                    await self._call("gettrackinfo", registered)
                )
                results.update(again)
                for n in still:
                    results[n] = NotFound(n, "registered with 17TRACK; no information yet")
                expired += more_expired
        expired = [n for n in expired if self._may_retrack(n)]
        if expired:
            await self._retrack(expired)
            again, _, _ = self._read_info(await self._call("gettrackinfo", expired))
            results.update(again)
        return list(results.values())

    def _may_retrack(self, number: str) -> bool:
        """At most one retrack per number per `RETRACK_INTERVAL`: an `Expired` that 17TRACK will
        not restart (-18019904) must not cost two extra requests on every poll."""
        now = self.clock()
        last = self._retracked.get(number)
        if last is not None and now - last < RETRACK_INTERVAL:
            return False
        self._retracked[number] = now
        return True

    # -- requests ----------------------------------------------------------------------------

    async def _call(self, endpoint: str, numbers: Sequence[str]) -> Data:
        response = await self.request("POST", endpoint, json=[{"number": n} for n in numbers])
        envelope = _read_envelope(response)
        code = envelope["code"]
        data: Data = envelope.get("data") or {}
        if code in ALARM_CODES:
            raise CarrierAlarm(self.name, ALARM_CODES[code])
        if code != 0:
            message = "; ".join(
                e.get("message") or str(e["code"]) for e in data.get("errors") or []
            )
            raise MalformedResponse(f"17TRACK {endpoint} answered code {code} {message}")
        for rejected in data.get("rejected") or []:
            if rejected["error"]["code"] in ALARM_CODES:
                raise CarrierAlarm(self.name, ALARM_CODES[rejected["error"]["code"]])
        return data

    async def _register(self, numbers: list[str]) -> tuple[dict[str, TrackResult], list[str]]:
        data = await self._call("register", numbers)
        refused: dict[str, TrackResult] = {}
        for rejected in data.get("rejected") or []:
            code, number = rejected["error"]["code"], normalise(rejected["number"])
            detail = rejected["error"].get("message") or str(code)
            if code == ALREADY_REGISTERED:
                continue
            if code == INVALID_FORMAT:
                refused[number] = InvalidNumber(number, detail)
            elif code == CARRIER_NOT_DETECTED:
                refused[number] = NotFound(number, detail)
            else:
                refused[number] = TemporaryFailure(number, f"17TRACK register: {detail}")
        return refused, [n for n in numbers if normalise(n) not in refused]

    async def _retrack(self, numbers: list[str]) -> None:
        data = await self._call("retrack", numbers)
        for rejected in data.get("rejected") or []:
            if rejected["error"]["code"] != RETRACK_NOT_ALLOWED:
                log.warning(
                    "17TRACK retrack refused",
                    extra={"carrier": self.name, "code": rejected["error"]["code"]},
                )

    # -- answers -----------------------------------------------------------------------------

    def _read_info(self, data: Data) -> tuple[dict[str, TrackResult], list[str], list[str]]:
        """Results by number, numbers to register, numbers 17TRACK stopped tracking."""
        results: dict[str, TrackResult] = {}
        unregistered: list[str] = []
        expired: list[str] = []
        for rejected in data.get("rejected") or []:
            code, number = rejected["error"]["code"], normalise(rejected["number"])
            detail = rejected["error"].get("message") or str(code)
            if code == NOT_REGISTERED:
                unregistered.append(number)
            elif code == NO_INFO_YET:
                results[number] = NotFound(number, detail)
            elif code == INVALID_FORMAT:
                results[number] = InvalidNumber(number, detail)
            else:
                results[number] = TemporaryFailure(number, f"17TRACK {code}: {detail}")
        for number, entry in _best_entries(data.get("accepted") or []).items():
            results[number] = self._tracked(number, entry)
            if _main_status(entry) == "Expired":
                expired.append(number)
        return results, unregistered, expired

    def _tracked(self, number: str, entry: Accepted) -> TrackResult:
        info: TrackInfo = entry.get("track_info") or {}
        latest: LatestStatus = info.get("latest_status") or {}
        main, sub = latest.get("status"), latest.get("sub_status")
        events = sorted(_events(info), key=_occurred_at, reverse=True)
        if main == "NotFound" or (main is None and not events):
            if sub == "NotFound_InvalidCode":
                return InvalidNumber(number, "17TRACK: NotFound_InvalidCode")
            return NotFound(number, f"17TRACK: {sub or 'NotFound'}")
        status = status_for(main, sub)
        if status is None:
            log.warning(
                "unknown 17TRACK status",
                extra={"carrier": self.name, "status": main, "sub": sub},
            )
            status = events[0].status if events else Status.IN_TRANSIT
        return Tracked(
            number=number,
            status=status,
            raw_status=sub or main or "",
            events=tuple(events),
            carrier=self.name,
        )


def _read_envelope(response: httpx.Response) -> Envelope:
    if response.status_code == 401:
        raise CarrierAlarm(
            "seventeentrack", "HTTP 401: key refused, IP not whitelisted or account disabled"
        )
    if response.status_code == 404:
        raise CarrierAlarm("seventeentrack", "HTTP 404: wrong base_url for the 17TRACK API")
    if response.status_code != 200:
        raise MalformedResponse(f"17TRACK answered HTTP {response.status_code}")
    content_type = response.headers.get("Content-Type", "")
    if "json" not in content_type:
        raise MalformedResponse(f"17TRACK answered {content_type or 'no content type'}, not JSON")
    try:
        # pydantic reads the bytes itself: no Python objects built first to be walked again
        return _ENVELOPE.validate_json(response.content)
    except (ValueError, ValidationError) as exc:
        raise MalformedResponse(f"unreadable 17TRACK answer: {exc}") from exc


def _best_entries(accepted: list[Accepted]) -> dict[str, Accepted]:
    """One entry per number: the first that is not NotFound, else the first."""
    best: dict[str, Accepted] = {}
    for entry in accepted:
        number = normalise(entry["number"])
        current = best.get(number)
        if current is None or (
            _main_status(current) == "NotFound" and _main_status(entry) != "NotFound"
        ):
            best[number] = entry
    return best


_occurred_at = attrgetter("occurred_at")


def _events(info: TrackInfo) -> list[TrackEvent]:
    found: list[TrackEvent] = []
    for leg in (info.get("tracking") or {}).get("providers") or []:
        provider: Provider = leg.get("provider") or {}
        source = provider.get("name") or provider.get("alias") or ""
        for event in leg.get("events") or []:
            when = event_time(event)
            if when is None:
                log.warning(
                    "17TRACK event without a readable time dropped",
                    extra={"carrier": "seventeentrack", "source": source},
                )
                continue
            sub, stage = event.get("sub_status"), event.get("stage")
            code = sub or STAGE_AS_SUB_STATUS.get(stage or "") or ""
            found.append(
                TrackEvent(  # positional, in the field order: a few hundred per answer
                    when,
                    status_for(None, code) or Status.IN_TRANSIT,
                    sub or stage or "",
                    event.get("description") or "",
                    event.get("location") or "",
                    source,
                )
            )
    return found
