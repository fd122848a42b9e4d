"""Russian Post tracking on loopback: `/rtm34` (SOAP 1.2, single) and `/fc` (SOAP 1.1, tickets).

What it reproduces from reference §4:

* `getOperationHistory`: records oldest first, `OperDate` in the event's local offset; an unknown
  number is an empty `OperationHistoryData`; wrong login/password is a SOAP Fault with an
  `AuthorizationFault` detail (HTTP 500, as JAX-WS services send faults); the free plan's
  `daily_limit` requests per login and Moscow day, after which every request is a Fault [R: the
  real wording is undocumented].
* `getTicket` / `getResponseByTicket`: ticket ids `YYYYMMDDHHmmsslllLOGIN` (Moscow time); error 6
  until the answer is prepared (`answer_delay`, 15 minutes by default), error 17 after 32 hours;
  the answer shows the parcels as they stood when it was prepared, `DateOper` in Moscow time. A poll
  sooner than 15 minutes after the previous one is counted in `state()["early_polls"]`.

Each scenario event becomes one operation: `raw["russianpost"]` ("14.6" or "14/6") if given,
otherwise the default operation for its status, chosen so the adapter's table maps it back to the
same status. Carrier faults: `auth` → AuthorizationFault / batch error 3, `quota` → the daily-limit
Fault, `unknown` → every number unknown.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from xml.sax.saxutils import escape, quoteattr

from carriers.emulators.faults import FaultKind
from carriers.emulators.scenario import Scenario, ScenarioEvent, ScenarioParcel
from carriers.emulators.server import EmulatorServer, Request, Response
from carriers.numbers import normalise
from carriers.russianpost import (
    MOSCOW,
    NS_DATA,
    NS_FCL,
    NS_OPER,
    NS_POS,
    SOAP11,
    SOAP12,
    TICKET_KEPT,
    TICKET_WAIT,
)
from carriers.russianpost_codes import operation_status
from carriers.status import Status

DEFAULT_OPERATIONS: Mapping[Status, tuple[int, int]] = {
    Status.INFO_RECEIVED: (27, 0),
    Status.IN_TRANSIT: (8, 0),
    Status.CUSTOMS_HOLD: (11, 0),
    Status.CUSTOMS_PAYMENT_DUE: (14, 6),
    Status.OUT_FOR_DELIVERY: (8, 18),
    Status.AVAILABLE_FOR_PICKUP: (8, 2),
    Status.DELIVERY_FAILURE: (12, 1),
    Status.DELIVERED: (2, 1),
    Status.RETURNING: (3, 1),
    Status.RETURNED: (2, 2),
    Status.EXCEPTION: (5, 1),
}

TYPE_NAMES: Mapping[int, str] = {
    1: "Прием", 2: "Вручение", 3: "Возврат", 5: "Невручение", 8: "Обработка",
    11: "Прием на таможню", 12: "Неудачная попытка вручения", 14: "Таможенное оформление",
    27: "Получена электронная регистрация",
}  # fmt: skip
ATTR_NAMES: Mapping[tuple[int, int], str] = {
    (1, 1): "Единичный", (2, 1): "Вручение адресату", (2, 2): "Вручение отправителю",
    (3, 1): "Истек срок хранения", (5, 1): "Утрачено", (8, 0): "Сортировка",
    (8, 2): "Прибыло в место вручения", (8, 18): "Передано почтальону",
    (12, 1): "Временное отсутствие адресата",
    (14, 6): "Направлено с обязательной уплатой таможенных платежей",
}  # fmt: skip

DAILY_LIMIT_REASON = "Превышен суточный лимит запросов"


def operation_for(event: ScenarioEvent) -> tuple[int, int] | None:
    """The (OperType, OperAttr) served for a scenario event; None for statuses never shown."""
    raw = event.raw_code(RussianPostEmulator.name)
    if raw:
        for sep in (".", "/", "-"):
            if sep in raw:
                oper_type, oper_attr = raw.split(sep, 1)
                return int(oper_type), int(oper_attr)
        return int(raw), 0
    return DEFAULT_OPERATIONS.get(event.status)


@dataclass
class _Ticket:
    login: str
    barcodes: list[str]
    issued_at: datetime
    last_poll: datetime | None = None


class RussianPostEmulator(EmulatorServer):
    """Both Russian Post tracking services on a virtual clock."""

    name: ClassVar[str] = "russianpost"
    prefix: ClassVar[str] = ""

    max_batch = 3000
    answer_delay = TICKET_WAIT  # how long the service takes to prepare a ticket's answer

    def __init__(
        self,
        scenario: Scenario | Mapping[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        now: datetime | None = None,
        credentials: tuple[str, str] | None = ("test-token", "test-secret"),
        daily_limit: int | None = 100,
    ) -> None:
        # (login, password) accepted; None accepts any non-empty pair.
        self.credentials = credentials
        # /rtm34 requests per login and Moscow day (the free plan); None for a contract client.
        self.daily_limit = daily_limit
        super().__init__(scenario, host=host, port=port, now=now)

    def reset_state(self) -> None:
        self.tickets: dict[str, _Ticket] = {}
        self.used: dict[tuple[str, str], int] = {}  # (login, Moscow date) -> /rtm34 requests
        self.early_polls = 0
        self.refused = 0

    def state(self) -> dict[str, Any]:
        return {
            "tickets": {
                tid: {"barcodes": len(t.barcodes), "issued_at": t.issued_at.isoformat()}
                for tid, t in self.tickets.items()
            },
            "used": {f"{login}/{day}": n for (login, day), n in self.used.items()},
            "early_polls": self.early_polls,
            "refused": self.refused,
        }

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if request.method != "POST":
            return Response.text("Method Not Allowed", 405)
        try:
            root = ET.fromstring(request.body)
        except ET.ParseError:
            return _fault11("Client", "Unreadable request")
        if path == "/rtm34":
            return self._single(request, root)
        if path == "/fc":
            return self._batch(request, root)
        return Response.text("Not Found", 404)

    def _credentials_ok(self, login: str, password: str) -> bool:
        if self.credentials is not None:
            return (login, password) == self.credentials
        return bool(login and password)

    def _parcel(self, number: str, fault: FaultKind | None) -> ScenarioParcel | None:
        parcel = None if fault is FaultKind.UNKNOWN else self.scenario.get(number)
        if parcel is not None and parcel.destination not in (None, "RU"):
            return None  # another country's post delivers it
        return parcel

    def _operations(
        self, parcel: ScenarioParcel, at: datetime
    ) -> list[tuple[ScenarioEvent, int, int]]:
        ops: list[tuple[ScenarioEvent, int, int]] = []
        for event in parcel.visible(at):
            operation = operation_for(event)
            if operation is None:
                continue
            if not ops and operation == (8, 0):
                operation = (1, 1)  # the first thing that happens to a parcel is its acceptance
            ops.append((event, *operation))
        return ops

    # -- /rtm34 ------------------------------------------------------------------------------

    def _single(self, request: Request, root: ET.Element) -> Response:
        barcode = normalise(root.findtext(f".//{{{NS_DATA}}}Barcode") or "")
        login = root.findtext(f".//{{{NS_DATA}}}login") or ""
        password = root.findtext(f".//{{{NS_DATA}}}password") or ""
        if request.fault is FaultKind.AUTH or not self._credentials_ok(login, password):
            self.refused += 1
            return _fault12("AuthorizationFault", "Ошибка авторизации: неверный логин или пароль")
        day = (login, self.now().astimezone(MOSCOW).date().isoformat())
        used = self.used.get(day, 0)
        if request.fault is FaultKind.QUOTA or (
            self.daily_limit is not None and used >= self.daily_limit
        ):
            return _fault12("OperationHistoryFault", DAILY_LIMIT_REASON)
        self.used[day] = used + 1
        self.stats.record_batch(request.path, 1)
        parcel = self._parcel(barcode, request.fault)
        if parcel is not None and parcel.invalid:
            return _fault12("OperationHistoryFault", "Некорректный ШПИ")
        records = "".join(
            _history_record(barcode, event, oper_type, oper_attr, parcel)
            for event, oper_type, oper_attr in (
                self._operations(parcel, self.now()) if parcel else []
            )
        )
        body = (
            f'<S:Envelope xmlns:S="{SOAP12}"><S:Body>'
            f'<ns7:getOperationHistoryResponse xmlns:ns3="{NS_DATA}" xmlns:ns7="{NS_OPER}">'
            f"<ns3:OperationHistoryData>{records}</ns3:OperationHistoryData>"
            "</ns7:getOperationHistoryResponse></S:Body></S:Envelope>"
        )
        return Response.text(body, 200, "application/soap+xml")

    # -- /fc -----------------------------------------------------------------------------------

    def _batch(self, request: Request, root: ET.Element) -> Response:
        ticket_req = root.find(f".//{{{NS_POS}}}ticketRequest")
        answer_req = root.find(f".//{{{NS_POS}}}answerByTicketRequest")
        req = ticket_req if ticket_req is not None else answer_req
        if req is None:
            return _fault11("Client", "Unknown operation")
        login = req.findtext("login") or ""
        password = req.findtext("password") or ""
        wrapper = "ticketResponse" if ticket_req is not None else "answerByTicketResponse"
        if request.fault is FaultKind.AUTH or not self._credentials_ok(login, password):
            self.refused += 1
            return _batch_error(wrapper, 3, "Ошибка авторизации")
        if ticket_req is not None:
            return self._get_ticket(request, ticket_req, login)
        return self._answer(request, req.findtext("ticket") or "")

    def _get_ticket(self, request: Request, req: ET.Element, login: str) -> Response:
        barcodes = [normalise(item.get("Barcode") or "") for item in req.iter(f"{{{NS_FCL}}}Item")]
        barcodes = [b for b in barcodes if b]
        self.stats.record_batch(request.path, len(barcodes))
        if not barcodes or len(barcodes) > self.max_batch:
            return _batch_error("ticketResponse", 2, "Неверный формат запроса")
        now = self.now()
        local = now.astimezone(MOSCOW)
        ticket_id = local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}" + login
        while ticket_id in self.tickets:  # two tickets in one millisecond of virtual time
            ticket_id += "X"
        self.tickets[ticket_id] = _Ticket(login, barcodes, now)
        body = (
            f'<S:Envelope xmlns:S="{SOAP11}"><S:Body>'
            f'<ns2:ticketResponse xmlns:ns2="{NS_POS}"><value>{escape(ticket_id)}</value>'
            "</ns2:ticketResponse></S:Body></S:Envelope>"
        )
        return Response.text(body, 200, "text/xml")

    def _answer(self, request: Request, ticket_id: str) -> Response:
        ticket = self.tickets.get(ticket_id)
        now = self.now()
        if ticket is None:
            return _batch_error("answerByTicketResponse", 2, "Неизвестный тикет")
        if now - ticket.issued_at < TICKET_WAIT or (
            ticket.last_poll is not None and now - ticket.last_poll < TICKET_WAIT
        ):
            self.early_polls += 1  # the service asks for 15 minutes, then 15 between polls
        ticket.last_poll = now
        if now - ticket.issued_at > TICKET_KEPT:
            return _batch_error("answerByTicketResponse", 17, "Ответ по тикету удален")
        ready_at = ticket.issued_at + self.answer_delay
        if now < ready_at:
            return _batch_error("answerByTicketResponse", 6, "Ответ еще не готов")
        items = "".join(self._item(b, ready_at, request.fault) for b in ticket.barcodes)
        prepared = ready_at.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M:%S")
        body = (
            f'<S:Envelope xmlns:S="{SOAP11}"><S:Body>'
            f'<ns2:answerByTicketResponse xmlns:ns2="{NS_POS}" xmlns:ns3="{NS_FCL}">'
            f'<value FileName="" FileTypeID="2" FileNumber="1" RecipientID="1"'
            f' DatePreparation="{prepared}">{items}</value>'
            "</ns2:answerByTicketResponse></S:Body></S:Envelope>"
        )
        return Response.text(body, 200, "text/xml")

    def _item(self, barcode: str, at: datetime, fault: FaultKind | None) -> str:
        parcel = self._parcel(barcode, fault)
        if parcel is not None and parcel.invalid:
            error = '<ns3:Error ErrorTypeID="2" ErrorName="Неверный формат ШПИ"/>'
            return f"<ns3:Item Barcode={quoteattr(barcode)}>{error}</ns3:Item>"
        ops = self._operations(parcel, at) if parcel is not None else []
        if not ops:
            error = '<ns3:Error ErrorTypeID="12" ErrorName="Нет информации по запрошенному ШПИ"/>'
            return f"<ns3:Item Barcode={quoteattr(barcode)}>{error}</ns3:Item>"
        rendered = "".join(
            f'<ns3:Operation OperTypeID="{t}" OperCtgID="{a}"'
            f" OperName={quoteattr(TYPE_NAMES.get(t, 'Операция'))}"
            f' DateOper="{event.at.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M:%S")}"'
            f" IndexOper={quoteattr(_index(event))}/>"
            for event, t, a in ops
        )
        return f"<ns3:Item Barcode={quoteattr(barcode)}>{rendered}</ns3:Item>"


def _index(event: ScenarioEvent) -> str:
    head = event.location.split(" ", 1)[0]
    return head if head.isdigit() and len(head) == 6 else ""


def _history_record(
    barcode: str,
    event: ScenarioEvent,
    oper_type: int,
    oper_attr: int,
    parcel: ScenarioParcel | None,
) -> str:
    local = event.local_time()
    stamp = local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
    stamp += local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]
    index = _index(event)
    description = event.location or (parcel.origin if parcel and event.leg == "first_mile" else "")
    address = (f"<ns3:Index>{index}</ns3:Index>" if index else "") + (
        f"<ns3:Description>{escape(description)}</ns3:Description>"
    )
    attr_name = ATTR_NAMES.get((oper_type, oper_attr), "")
    return (
        "<ns3:historyRecord>"
        f"<ns3:AddressParameters><ns3:OperationAddress>{address}</ns3:OperationAddress>"
        "</ns3:AddressParameters>"
        f"<ns3:ItemParameters><ns3:Barcode>{escape(barcode)}</ns3:Barcode></ns3:ItemParameters>"
        "<ns3:OperationParameters>"
        f"<ns3:OperType><ns3:Id>{oper_type}</ns3:Id>"
        f"<ns3:Name>{escape(TYPE_NAMES.get(oper_type, 'Операция'))}</ns3:Name></ns3:OperType>"
        f"<ns3:OperAttr><ns3:Id>{oper_attr}</ns3:Id><ns3:Name>{escape(attr_name)}</ns3:Name>"
        "</ns3:OperAttr>"
        f"<ns3:OperDate>{stamp}</ns3:OperDate>"
        "</ns3:OperationParameters></ns3:historyRecord>"
    )


def _fault12(detail: str, reason: str) -> Response:
    body = (
        f'<S:Envelope xmlns:S="{SOAP12}"><S:Body><S:Fault>'
        "<S:Code><S:Value>S:Receiver</S:Value></S:Code>"
        f'<S:Reason><S:Text xml:lang="ru">{escape(reason)}</S:Text></S:Reason>'
        f'<S:Detail><ns3:{detail} xmlns:ns3="{NS_DATA}">{escape(reason)}</ns3:{detail}></S:Detail>'
        "</S:Fault></S:Body></S:Envelope>"
    )
    return Response.text(body, 500, "application/soap+xml")


def _fault11(code: str, reason: str) -> Response:
    body = (
        f'<S:Envelope xmlns:S="{SOAP11}"><S:Body><S:Fault>'
        f"<faultcode>S:{code}</faultcode><faultstring>{escape(reason)}</faultstring>"
        "</S:Fault></S:Body></S:Envelope>"
    )
    return Response.text(body, 500, "text/xml")


def _batch_error(wrapper: str, code: int, name: str) -> Response:
    body = (
        f'<S:Envelope xmlns:S="{SOAP11}"><S:Body><ns2:{wrapper} xmlns:ns2="{NS_POS}">'
        f'<error ErrorTypeID="{code}" ErrorName={quoteattr(name)}/>'
        f"</ns2:{wrapper}></S:Body></S:Envelope>"
    )
    return Response.text(body, 200, "text/xml")


def _check_defaults() -> None:
    for status, (oper_type, oper_attr) in DEFAULT_OPERATIONS.items():
        if operation_status(oper_type, oper_attr) is not status:  # pragma: no cover
            raise AssertionError(f"{oper_type}.{oper_attr} does not map back to {status}")


_check_defaults()
