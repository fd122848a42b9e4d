"""Russian Post (Почта России): tracking through the SOAP services on tracking.russianpost.ru.

Wire facts are from `reference/carrier-apis.md` §4: `getOperationHistory` on `/rtm34` (SOAP 1.2) for
one number per request, and the batch ticket service on `/fc` (SOAP 1.1): `getTicket` with up to 3000
barcodes, then `getResponseByTicket` no sooner than 15 minutes later. The parsers here are pure: they
take response bytes, match elements by namespace URI and local name, and return results. Malformed
answers become TemporaryFailure values; only a refused login raises (CarrierAlarm).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from carriers.base import (
    CarrierAlarm,
    InvalidNumber,
    NotFound,
    TemporaryFailure,
    Tracked,
    TrackEvent,
    TrackResult,
)
from carriers.numbers import normalise
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


def parse_ticket_response(body: bytes | str) -> str | BatchError:
    """The ticket id from a `getTicket` answer, or its error (auth errors raise CarrierAlarm)."""
    root = _parse_xml(body)
    if root is None:
        return BatchError(-1, "unreadable answer")
    fault = find_fault(root)
    if fault is not None:
        return BatchError(-1, f"fault: {fault.reason}")
    response = next(_iter(root, "ticketResponse"), None)
    if response is None:
        return BatchError(-1, "no ticketResponse")
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
    root = _parse_xml(body)
    if root is None:
        return BatchError(-1, "unreadable answer")
    fault = find_fault(root)
    if fault is not None:
        return BatchError(-1, f"fault: {fault.reason}")
    response = next(_iter(root, "answerByTicketResponse"), None)
    if response is None:
        return BatchError(-1, "no answerByTicketResponse")
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
