"""Russian Post (Почта России): tracking through the SOAP services on tracking.russianpost.ru.

Wire facts are from `reference/carrier-apis.md` §4: `getOperationHistory` on `/rtm34` (SOAP 1.2) for
one number per request, and the batch ticket service on `/fc` (SOAP 1.1): `getTicket` with up to 3000
barcodes, then `getResponseByTicket` no sooner than 15 minutes later. The parsers here are pure: they
take response bytes, match elements by local name whatever prefix the server picked, and return
results. Malformed answers become TemporaryFailure values; only a refused login raises
(CarrierAlarm). ElementTree resolves no external entities, and the bundled expat limits entity
expansion, so a hostile answer cannot read files or blow up memory.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Literal
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import httpx

from carriers.base import (
    AdapterSettings,
    CarrierAlarm,
    Clock,
    InvalidNumber,
    NotFound,
    RateLimit,
    TemporaryFailure,
    Tracked,
    TrackEvent,
    TrackResult,
)
from carriers.breaker import CircuitBreaker
from carriers.http import RetryPolicy
from carriers.httpadapter import HttpAdapter, MalformedResponse, utc_now
from carriers.numbers import normalise
from carriers.ratelimit import Limiter, QuotaExhausted, SlidingWindowLimiter
from carriers.russianpost_codes import operation_status

CARRIER = "russianpost"
SOURCE = "Почта России"

MOSCOW = ZoneInfo("Europe/Moscow")
"""Batch `DateOper` has no offset. We read it as Moscow time: the service runs on Moscow time and
the spec names no other zone [R]; an office in Vladivostok may therefore be off by a few hours."""

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_OPER = "http://russianpost.org/operationhistory"
NS_DATA = "http://russianpost.org/operationhistory/data"
NS_POS = "http://fclient.russianpost.org/postserver"
NS_FCL = "http://fclient.russianpost.org"

# getResponseByTicket / getTicket error codes (§4.2).
ERR_BAD_FORMAT = 2
ERR_AUTH = 3
ERR_NOT_READY = 6
ERR_NO_INFO = 12
ERR_INTERNAL = 16
ERR_EXPIRED = 17
ERR_CONCURRENCY = 18
ERR_LANGUAGE = 20
ERR_BARCODE_TOO_LONG = 21


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _iter(el: ET.Element, name: str) -> Iterator[ET.Element]:
    """Descendants with this local name, in document order, whatever prefix the server chose."""
    for child in el.iter():
        if child is not el and _local(child.tag) == name:
            yield child


def _child(el: ET.Element | None, *path: str) -> ET.Element | None:
    """The first child chain by local names, or None anywhere along the way."""
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if _local(c.tag) == name), None)
    return el


def _text(el: ET.Element | None, *path: str) -> str:
    found = _child(el, *path) if path else el
    return (found.text or "").strip() if found is not None else ""


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


def _parse_xml(body: bytes | str) -> ET.Element | None:
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        return None


def raw_code(oper_type: int, oper_attr: int | None) -> str:
    """How a Russian Post operation is kept beside our status: "2.1" (type.attribute)."""
    return f"{oper_type}.{oper_attr if oper_attr is not None else 0}"


# --- SOAP faults ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoapFault:
    """A SOAP Fault: its reason text and the local name of its detail element (e.g. AuthorizationFault)."""

    reason: str
    detail: str


def find_fault(root: ET.Element) -> SoapFault | None:
    """The Fault in a SOAP 1.1 or 1.2 envelope, if the body holds one."""
    fault = next(_iter(root, "Fault"), None)
    if fault is None or _ns(fault.tag) not in (SOAP11, SOAP12):
        return None
    # SOAP 1.2: Reason/Text and Detail; SOAP 1.1: faultstring and detail.
    reason = _text(fault, "Reason", "Text") or _text(fault, "faultstring")
    detail_el = _child(fault, "Detail")
    if detail_el is None:
        detail_el = _child(fault, "detail")
    detail = ""
    if detail_el is not None and len(detail_el):
        first = detail_el[0]
        detail = _local(first.tag)
        reason = reason or (first.text or "").strip()
    return SoapFault(reason, detail)


def fault_result(fault: SoapFault, number: str) -> TrackResult:
    """What a Fault means for one number. A refused login or language is for a person to fix."""
    if fault.detail == "AuthorizationFault":
        raise CarrierAlarm(CARRIER, f"authorization refused: {fault.reason}")
    if fault.detail == "LanguageFault":
        raise CarrierAlarm(CARRIER, f"language refused: {fault.reason}")
    lowered = fault.reason.lower()
    # The wording of a bad-barcode OperationHistoryFault is not documented [R]; these are the words
    # the service is reported to use ("Некорректный ШПИ", "Barcode is invalid").
    if fault.detail == "OperationHistoryFault" and any(
        word in lowered for word in ("некоррект", "неверн", "invalid", "incorrect")
    ):
        return InvalidNumber(number, fault.reason)
    return TemporaryFailure(number, f"Russian Post fault {fault.detail or '?'}: {fault.reason}")


# --- getOperationHistory (single) -----------------------------------------------------------


def parse_operation_history(body: bytes | str, number: str) -> TrackResult:
    """A `getOperationHistory` answer for one number.

    An empty `OperationHistoryData` is the documented "no operations yet": NotFound. Records come
    oldest first; the result lists events newest first, and the newest decides the status.
    """
    root = _parse_xml(body)
    if root is None:
        return TemporaryFailure(number, "Russian Post sent an unreadable answer")
    fault = find_fault(root)
    if fault is not None:
        return fault_result(fault, number)
    data = next(_iter(root, "OperationHistoryData"), None)
    if data is None:
        return TemporaryFailure(number, "Russian Post answer holds no OperationHistoryData")
    events: list[TrackEvent] = []
    for record in _iter(data, "historyRecord"):
        event = _history_event(record)
        if event is not None:
            events.append(event)
    if not events:
        return NotFound(number, "Russian Post has no operations for the number yet")
    return _tracked(number, events)


def _history_event(record: ET.Element) -> TrackEvent | None:
    params = _child(record, "OperationParameters")
    oper_type = _int(_text(params, "OperType", "Id"))
    when = _parse_offset_time(_text(params, "OperDate"))
    if oper_type is None or when is None:
        return None
    oper_attr = _int(_text(params, "OperAttr", "Id"))
    names = [_text(params, "OperType", "Name"), _text(params, "OperAttr", "Name")]
    address = _child(record, "AddressParameters")
    index = _text(address, "OperationAddress", "Index")
    place = _text(address, "OperationAddress", "Description")
    if not place:
        place = _text(address, "CountryOper", "NameEN") or _text(address, "CountryOper", "NameRU")
    location = place if not index or index in place else f"{index} {place}".strip()
    return TrackEvent(
        occurred_at=when,
        status=operation_status(oper_type, oper_attr),
        raw_code=raw_code(oper_type, oper_attr),
        description=", ".join(n for n in names if n),
        location=location,
        source=SOURCE,
    )


def _parse_offset_time(text: str) -> datetime | None:
    """`OperDate` ("2015-07-09T18:08:00.000+03:00") as aware UTC; Moscow if it lacks an offset."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=MOSCOW)
    return parsed.astimezone(UTC)


def _parse_batch_time(text: str) -> datetime | None:
    """Batch `DateOper` ("dd.MM.yyyy HH:mm:ss", local, read as Moscow) as aware UTC."""
    try:
        parsed = datetime.strptime(text.strip(), "%d.%m.%Y %H:%M:%S")
    except ValueError:
        return None
    return parsed.replace(tzinfo=MOSCOW).astimezone(UTC)


def _tracked(number: str, oldest_first: list[TrackEvent]) -> Tracked:
    # Newest first; among equal times the later record is the newer one.
    indexed = sorted(enumerate(oldest_first), key=lambda p: (p[1].occurred_at, p[0]), reverse=True)
    events = tuple(e for _, e in indexed)
    return Tracked(
        number=number,
        status=events[0].status,
        raw_status=events[0].raw_code,
        events=events,
        carrier=CARRIER,
    )


# --- batch: getTicket / getResponseByTicket ------------------------------------------------


@dataclass(frozen=True)
class BatchError:
    """An `error{ErrorTypeID, ErrorName}` answer from the batch service."""

    code: int
    name: str


def _batch_error(el: ET.Element | None) -> BatchError | None:
    """Reads an error/Error element whether its fields are attributes or child elements."""
    if el is None:
        return None
    code = _int(el.get("ErrorTypeID")) or _int(_text(el, "ErrorTypeID"))
    name = el.get("ErrorName") or _text(el, "ErrorName")
    return BatchError(code if code is not None else -1, name)


def _batch_alarm(error: BatchError) -> None:
    if error.code in (ERR_AUTH, ERR_LANGUAGE):
        raise CarrierAlarm(CARRIER, f"batch service error {error.code}: {error.name}")


def _batch_response(body: bytes | str, name: str) -> ET.Element | BatchError:
    """The `name` element of a batch-service answer, or why there is none (unreadable, a fault)."""
    root = _parse_xml(body)
    if root is None:
        return BatchError(-1, "unreadable answer")
    fault = find_fault(root)
    if fault is not None:
        return BatchError(-1, f"fault: {fault.reason}")
    response = next(_iter(root, name), None)
    if response is None:
        return BatchError(-1, f"no {name}")
    return response


def parse_ticket_response(body: bytes | str) -> str | BatchError:
    """The ticket id from a `getTicket` answer, or its error (auth errors raise CarrierAlarm)."""
    response = _batch_response(body, "ticketResponse")
    if isinstance(response, BatchError):
        return response
    error = _batch_error(_child(response, "error"))
    if error is not None:
        _batch_alarm(error)
        return error
    ticket = _text(response, "value")
    return ticket if ticket else BatchError(-1, "empty ticket")


def parse_answer_by_ticket(body: bytes | str) -> dict[str, TrackResult] | BatchError:
    """Per-barcode results from a `getResponseByTicket` answer, or the answer-wide error.

    Error 6 (not ready) and 17 (expired) come back as BatchError for the caller to act on; per item,
    error 12 is NotFound and a format error is InvalidNumber.
    """
    response = _batch_response(body, "answerByTicketResponse")
    if isinstance(response, BatchError):
        return response
    error = _batch_error(_child(response, "error"))
    value = _child(response, "value")
    if error is None and value is not None:
        error = _batch_error(_child(value, "error"))
    if error is not None:
        _batch_alarm(error)
        return error
    if value is None:
        return BatchError(-1, "no value in answer")
    results: dict[str, TrackResult] = {}
    for item in _iter(value, "Item"):
        barcode = normalise(item.get("Barcode") or "")
        if barcode:
            results[barcode] = _batch_item(item, barcode)
    return results


def _batch_item(item: ET.Element, barcode: str) -> TrackResult:
    error = _batch_error(_child(item, "Error"))
    if error is not None:
        if error.code == ERR_NO_INFO:
            return NotFound(barcode, error.name)
        if error.code in (ERR_BAD_FORMAT, ERR_BARCODE_TOO_LONG):
            return InvalidNumber(barcode, error.name)
        return TemporaryFailure(barcode, f"Russian Post batch error {error.code}: {error.name}")
    events: list[TrackEvent] = []
    for op in _iter(item, "Operation"):
        oper_type = _int(op.get("OperTypeID"))
        when = _parse_batch_time(op.get("DateOper") or "")
        if oper_type is None or when is None:
            continue
        oper_attr = _int(op.get("OperCtgID"))
        events.append(
            TrackEvent(
                occurred_at=when,
                status=operation_status(oper_type, oper_attr),
                raw_code=raw_code(oper_type, oper_attr),
                description=(op.get("OperName") or "").strip(),
                location=(op.get("IndexOper") or "").strip(),
                source=SOURCE,
            )
        )
    if not events:
        return NotFound(barcode, "Russian Post has no operations for the number yet")
    return _tracked(barcode, events)


# --- request bodies -------------------------------------------------------------------------


def operation_history_request(
    barcode: str, login: str, password: str, language: str = "RUS"
) -> str:
    """The SOAP 1.2 `getOperationHistory` envelope; credentials go inside the body (§4.1)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP12}" xmlns:oper="{NS_OPER}" xmlns:data="{NS_DATA}"'
        f' xmlns:soapenv="{SOAP11}">'
        "<soap:Header/><soap:Body><oper:getOperationHistory>"
        "<data:OperationHistoryRequest>"
        f"<data:Barcode>{escape(barcode)}</data:Barcode>"
        "<data:MessageType>0</data:MessageType>"
        f"<data:Language>{escape(language)}</data:Language>"
        "</data:OperationHistoryRequest>"
        '<data:AuthorizationHeader soapenv:mustUnderstand="1">'
        f"<data:login>{escape(login)}</data:login><data:password>{escape(password)}</data:password>"
        "</data:AuthorizationHeader>"
        "</oper:getOperationHistory></soap:Body></soap:Envelope>"
    )


def ticket_request(
    barcodes: Sequence[str], login: str, password: str, language: str = "RUS"
) -> str:
    """The SOAP 1.1 `getTicket` envelope for 1–3000 barcodes (§4.2)."""
    items = "".join(f'<fcl:Item Barcode="{escape(b, {chr(34): "&quot;"})}"/>' for b in barcodes)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP11}" xmlns:pos="{NS_POS}" xmlns:fcl="{NS_FCL}">'
        "<soapenv:Header/><soapenv:Body><pos:ticketRequest>"
        f"<request>{items}</request>"
        f"<login>{escape(login)}</login><password>{escape(password)}</password>"
        f"<language>{escape(language)}</language>"
        "</pos:ticketRequest></soapenv:Body></soapenv:Envelope>"
    )


def answer_request(ticket: str, login: str, password: str) -> str:
    """The SOAP 1.1 `getResponseByTicket` envelope (§4.2)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP11}" xmlns:pos="{NS_POS}">'
        "<soapenv:Header/><soapenv:Body><pos:answerByTicketRequest>"
        f"<ticket>{escape(ticket)}</ticket>"
        f"<login>{escape(login)}</login><password>{escape(password)}</password>"
        "</pos:answerByTicketRequest></soapenv:Body></soapenv:Envelope>"
    )


# --- daily quota ------------------------------------------------------------------------------

FREE_PLAN_PER_DAY = 100


class RussianPostLimiter:
    """The per-second window plus the free plan's 100 requests a day, counted per Moscow day.

    The user agreement (§4.3) says "100 requests per day" without naming the day's time zone. The
    service runs on Moscow time, so we count Moscow calendar days: the allowance returns at Moscow
    midnight (21:00 UTC), and `QuotaExhausted.retry_after` is the wait until then. Should Russian
    Post refuse anyway (another day boundary, a shared login, a restart), its "limit exceeded" Fault
    is the backstop: the adapter calls `exhaust()`, asks nothing more until the next Moscow
    midnight, and raises CarrierAlarm once so a person learns the count was off.

    The count lives in this process: a daemon restarted mid-day starts again from zero [known gap].
    """

    def __init__(
        self,
        per_second: float,
        per_day: int | None = FREE_PLAN_PER_DAY,
        *,
        clock: Clock,
    ) -> None:
        self.window = SlidingWindowLimiter(per_second)
        self.per_day = per_day
        self._clock = clock
        self._sent: list[datetime] = []  # request times in the current Moscow day, UTC
        self._exhausted_until: datetime | None = None

    def used_today(self) -> int:
        """Requests counted in the current Moscow day."""
        now = self._clock().astimezone(UTC)
        start, _ = _day_bounds(now, MOSCOW)
        return sum(1 for t in self._sent if t >= start)

    def exhaust(self) -> float:
        """Russian Post said the limit is spent: refuse until the next Moscow midnight."""
        now = self._clock().astimezone(UTC)
        _, end = _day_bounds(now, MOSCOW)
        self._exhausted_until = end
        return (end - now).total_seconds()

    def take(self) -> None:
        """Count one request or raise `QuotaExhausted` (never waits)."""
        now = self._clock().astimezone(UTC)
        if self._exhausted_until is not None:
            if now < self._exhausted_until:
                raise QuotaExhausted((self._exhausted_until - now).total_seconds())
            self._exhausted_until = None
        if self.per_day is not None:
            start, end = _day_bounds(now, MOSCOW)
            self._sent = [t for t in self._sent if t >= start]
            if len(self._sent) >= self.per_day:
                raise QuotaExhausted((end - now).total_seconds())
        self._sent.append(now)

    async def acquire(self) -> None:
        self.take()
        await self.window.acquire()


def _day_bounds(now: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The start and end (aware UTC) of the calendar day in `zone` that contains `now`."""
    local = now.astimezone(zone)
    start = datetime(local.year, local.month, local.day, tzinfo=zone)
    end = datetime.combine(start.date() + timedelta(days=1), time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _is_limit_fault(fault: SoapFault) -> bool:
    # The wording for "daily limit exceeded" is not documented [R]; these are the likely words.
    reason = fault.reason.lower()
    return any(word in reason for word in ("лимит", "limit", "превышен", "exceeded"))


# --- the adapter ------------------------------------------------------------------------------

SINGLE_PATH = "rtm34"
BATCH_PATH = "fc"
SOAP12_CONTENT_TYPE = "application/soap+xml; charset=utf-8"
SOAP11_CONTENT_TYPE = "text/xml; charset=utf-8"

TICKET_WAIT = timedelta(minutes=15)
"""First `getResponseByTicket` no sooner than this after `getTicket`, then at most once per this."""
TICKET_KEPT = timedelta(hours=32)
"""Russian Post deletes a ticket's answer after this; asking later is error 17."""
BATCH_MAX = 3000

_TRACKABLE = re.compile(r"^([A-Z]{2}\d{9}[A-Z]{2}|\d{14})$")


def looks_trackable(number: str) -> bool:
    """Russian Post barcodes: 14-digit domestic or 13-character S10 (§4.1). Others cost a request
    of the daily 100 for nothing, so they are answered InvalidNumber without asking."""
    return bool(_TRACKABLE.match(normalise(number)))


class SoapFaultAnswer(Exception):
    """An HTTP error status whose body is a SOAP Fault: the body says what is wrong, not the status.

    Raised from a response hook so the shared retry layer, which retries every 500, does not retry
    an AuthorizationFault (SOAP 1.1 sends every fault as HTTP 500).
    """

    def __init__(self, body: bytes) -> None:
        super().__init__("SOAP fault")
        self.body = body


@dataclass
class _Ticket:
    id: str
    barcodes: frozenset[str]
    issued_at: datetime
    next_poll_at: datetime


class RussianPostAdapter(HttpAdapter):
    """Russian Post tracking: `getOperationHistory` per number, or the ticket batch service.

    Credentials: `AdapterSettings.api_key` is the login, `secret` the password (tracking.pochta.ru,
    "Настройки доступа"). `mode="single"` (default, the free plan) asks `/rtm34` once per number
    and keeps to 100 requests per Moscow day; `mode="batch"` (contract clients) sends up to 3000
    numbers per `getTicket` on `/fc` and collects the answer with `getResponseByTicket` 15 minutes
    later. Until then, and between polls, it answers TemporaryFailure with `retry_after` set to the
    seconds until the ticket may be asked again; outstanding tickets are remembered in the adapter.
    """

    name = "russianpost"
    batch_size = 1
    # 100 a day on the free plan (§4.3). No per-second limit is published; one a second also keeps
    # batch polling far from the "concurrent request limit" (getTicket error 18).
    rate_limit = RateLimit(per_second=1.0, per_day=FREE_PLAN_PER_DAY)

    def __init__(
        self,
        settings: AdapterSettings,
        *,
        mode: Literal["single", "batch"] = "single",
        language: Literal["RUS", "ENG"] = "RUS",
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: Limiter | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        the_clock: Clock = clock or utc_now
        if limiter is None:
            limiter = self._default_limiter(settings, the_clock)
        super().__init__(
            settings,
            clock=the_clock,
            transport=transport,
            limiter=limiter,
            retry=retry,
            breaker=breaker,
            sleep=sleep,
        )
        self.mode = mode
        self.language = language
        self.batch_size = BATCH_MAX if mode == "batch" else 1
        self.client.event_hooks = {"request": [], "response": [_surface_soap_fault]}
        self._tickets: dict[str, _Ticket] = {}
        self._ticket_of: dict[str, str] = {}
        self._ready: dict[str, tuple[TrackResult, datetime]] = {}

    def _default_limiter(self, settings: AdapterSettings, clock: Clock) -> RussianPostLimiter:
        per_second = self.rate_limit.per_second
        if settings.rate_limit_per_second:
            per_second = min(per_second, settings.rate_limit_per_second)
        days = [d for d in (self.rate_limit.per_day, settings.daily_limit) if d]
        return RussianPostLimiter(per_second, min(days) if days else None, clock=clock)

    @property
    def outstanding_tickets(self) -> int:
        """Tickets asked for and not yet answered (batch mode)."""
        return len(self._tickets)

    async def track_batch(self, numbers: Sequence[str]) -> list[TrackResult]:
        invalid = {
            n: InvalidNumber(n, "Russian Post tracks 14-digit or S10 barcodes")
            for n in numbers
            if not looks_trackable(n)
        }
        asked = [n for n in numbers if n not in invalid]
        if not asked:
            found: dict[str, TrackResult] = {}
        elif self.mode == "batch":
            found = await self._track_by_ticket(asked)
        else:
            found = {n: await self._history(n) for n in asked}
        return [invalid.get(n) or found[n] for n in numbers]

    # -- single ----------------------------------------------------------------------------------

    async def _soap(self, path: str, envelope: str, content_type: str) -> bytes:
        """POST an envelope and return the answer's body, a SOAP Fault's included."""
        try:
            response = await self.request(
                "POST",
                path,
                content=envelope.encode("utf-8"),
                headers={"Content-Type": content_type},
            )
        except SoapFaultAnswer as fault:
            return fault.body
        if response.status_code != 200:
            raise MalformedResponse(f"{path} answered HTTP {response.status_code}")
        return response.content

    async def _history(self, number: str) -> TrackResult:
        envelope = operation_history_request(
            normalise(number), self.settings.api_key, self.settings.secret, self.language
        )
        body = await self._soap(SINGLE_PATH, envelope, SOAP12_CONTENT_TYPE)
        root = _parse_xml(body)
        if root is None:
            raise MalformedResponse("getOperationHistory answer is not XML")
        fault = find_fault(root)
        if fault is not None and _is_limit_fault(fault):
            # Our own count should have stopped us first: another client shares the login, or the
            # daemon restarted mid-day. Ask nothing more today, and tell a person.
            if isinstance(self.limiter, RussianPostLimiter):
                self.limiter.exhaust()
            raise CarrierAlarm(
                self.name, f"daily request limit refused by the server: {fault.reason}"
            )
        result = parse_operation_history(body, number)
        if fault is None and isinstance(result, TemporaryFailure):
            raise MalformedResponse(result.detail)  # counts against the breaker, unlike a fault
        return result

    # -- batch -----------------------------------------------------------------------------------

    async def _track_by_ticket(self, numbers: Sequence[str]) -> dict[str, TrackResult]:
        now = self.clock()
        self._forget_old(now)
        out: dict[str, TrackResult] = {}
        pending: dict[str, list[str]] = {}  # ticket id -> asked numbers waiting on it
        need_ticket: list[str] = []
        for number in numbers:
            key = normalise(number)
            if key in self._ready:
                out[number] = replace(self._ready.pop(key)[0], number=number)
            elif key in self._ticket_of:
                pending.setdefault(self._ticket_of[key], []).append(number)
            else:
                need_ticket.append(number)
        for ticket_id, waiting in pending.items():
            ticket = self._tickets[ticket_id]
            if now >= ticket.next_poll_at:
                await self._poll(ticket)
            for number in waiting:
                key = normalise(number)
                if key in self._ready:
                    out[number] = replace(self._ready.pop(key)[0], number=number)
                elif key in self._ticket_of:
                    wait = (self._tickets[self._ticket_of[key]].next_poll_at - now).total_seconds()
                    out[number] = TemporaryFailure(
                        number, "Russian Post batch answer not ready yet", max(wait, 1.0)
                    )
                else:
                    need_ticket.append(number)  # the ticket expired: ask again
        if need_ticket:
            out.update(await self._new_ticket(need_ticket, now))
        return out

    async def _new_ticket(self, numbers: Sequence[str], now: datetime) -> dict[str, TrackResult]:
        barcodes = list(dict.fromkeys(normalise(n) for n in numbers))
        envelope = ticket_request(
            barcodes, self.settings.api_key, self.settings.secret, self.language
        )
        body = await self._soap(BATCH_PATH, envelope, SOAP11_CONTENT_TYPE)
        answer = parse_ticket_response(body)
        if isinstance(answer, BatchError):
            if answer.code == -1 and _parse_xml(body) is None:
                raise MalformedResponse(f"getTicket: {answer.name}")
            detail = f"Russian Post getTicket error {answer.code}: {answer.name}"
            return {n: TemporaryFailure(n, detail) for n in numbers}
        ticket = _Ticket(answer, frozenset(barcodes), now, now + TICKET_WAIT)
        self._tickets[ticket.id] = ticket
        for barcode in barcodes:
            self._ticket_of[barcode] = ticket.id
        wait = TICKET_WAIT.total_seconds()
        return {n: TemporaryFailure(n, "Russian Post batch ticket issued", wait) for n in numbers}

    async def _poll(self, ticket: _Ticket) -> None:
        envelope = answer_request(ticket.id, self.settings.api_key, self.settings.secret)
        body = await self._soap(BATCH_PATH, envelope, SOAP11_CONTENT_TYPE)
        answer = parse_answer_by_ticket(body)
        now = self.clock()
        if isinstance(answer, BatchError):
            if answer.code == ERR_EXPIRED:
                self._drop(ticket)
            else:  # 6 = not ready, or a passing error: the 15-minute rule holds either way
                ticket.next_poll_at = now + TICKET_WAIT
                if answer.code == -1 and _parse_xml(body) is None:
                    raise MalformedResponse(f"getResponseByTicket: {answer.name}")
            return
        for barcode in ticket.barcodes:
            result = answer.get(barcode) or TemporaryFailure(
                barcode, "Russian Post batch answer left the number out"
            )
            self._ready[barcode] = (result, now)
        self._drop(ticket)

    def _drop(self, ticket: _Ticket) -> None:
        self._tickets.pop(ticket.id, None)
        for barcode in ticket.barcodes:
            if self._ticket_of.get(barcode) == ticket.id:
                del self._ticket_of[barcode]

    def _forget_old(self, now: datetime) -> None:
        """Tickets past 32 h are gone at Russian Post; unclaimed answers that old are stale."""
        for ticket in list(self._tickets.values()):
            if now - ticket.issued_at > TICKET_KEPT:
                self._drop(ticket)
        for barcode, (_, stored) in list(self._ready.items()):
            if now - stored > TICKET_KEPT:
                del self._ready[barcode]


async def _surface_soap_fault(response: httpx.Response) -> None:
    if response.status_code >= 400 and response.status_code != 429:
        body = await response.aread()
        root = _parse_xml(body)
        if root is not None and find_fault(root) is not None:
            raise SoapFaultAnswer(body)
