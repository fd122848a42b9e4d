"""Russian Post SOAP answers in the documented shape (§4.5), beside the normalised results."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from carriers.base import (
    CarrierAlarm,
    InvalidNumber,
    NotFound,
    TemporaryFailure,
    Tracked,
    TrackEvent,
)
from carriers.russianpost import (
    NS_DATA,
    NS_FCL,
    NS_OPER,
    NS_POS,
    BatchError,
    answer_request,
    operation_history_request,
    parse_answer_by_ticket,
    parse_operation_history,
    parse_ticket_response,
    ticket_request,
)
from carriers.status import Status

HISTORY = """<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope">
  <S:Body>
    <ns7:getOperationHistoryResponse xmlns:ns3="http://russianpost.org/operationhistory/data"
                                     xmlns:ns7="http://russianpost.org/operationhistory">
      <ns3:OperationHistoryData>
        <ns3:historyRecord>
          <ns3:AddressParameters>
            <ns3:OperationAddress><ns3:Description>Шэньчжэнь</ns3:Description></ns3:OperationAddress>
            <ns3:MailDirect><ns3:Id>643</ns3:Id><ns3:Code2A>RU</ns3:Code2A><ns3:Code3A>RUS</ns3:Code3A>
              <ns3:NameRU>Российская Федерация</ns3:NameRU><ns3:NameEN>Russian Federation</ns3:NameEN></ns3:MailDirect>
            <ns3:CountryFrom><ns3:Id>156</ns3:Id><ns3:Code2A>CN</ns3:Code2A><ns3:Code3A>CHN</ns3:Code3A>
              <ns3:NameRU>Китай</ns3:NameRU><ns3:NameEN>China</ns3:NameEN></ns3:CountryFrom>
            <ns3:CountryOper><ns3:Id>156</ns3:Id><ns3:Code2A>CN</ns3:Code2A><ns3:Code3A>CHN</ns3:Code3A>
              <ns3:NameRU>Китай</ns3:NameRU><ns3:NameEN>China</ns3:NameEN></ns3:CountryOper>
          </ns3:AddressParameters>
          <ns3:FinanceParameters><ns3:Payment>0</ns3:Payment><ns3:Value>0</ns3:Value></ns3:FinanceParameters>
          <ns3:ItemParameters>
            <ns3:Barcode>RR123456785CN</ns3:Barcode>
            <ns3:ValidRuType>false</ns3:ValidRuType><ns3:ValidEnType>true</ns3:ValidEnType>
            <ns3:ComplexItemName>Заказное письмо</ns3:ComplexItemName>
            <ns3:MailType><ns3:Id>2</ns3:Id><ns3:Name>Письмо</ns3:Name></ns3:MailType>
            <ns3:MailCtg><ns3:Id>1</ns3:Id><ns3:Name>Заказное</ns3:Name></ns3:MailCtg>
            <ns3:Mass>120</ns3:Mass>
          </ns3:ItemParameters>
          <ns3:OperationParameters>
            <ns3:OperType><ns3:Id>1</ns3:Id><ns3:Name>Прием</ns3:Name></ns3:OperType>
            <ns3:OperAttr><ns3:Id>1</ns3:Id><ns3:Name>Единичный</ns3:Name></ns3:OperAttr>
            <ns3:OperDate>2024-05-07T10:00:00.000+08:00</ns3:OperDate>
          </ns3:OperationParameters>
          <ns3:UserParameters><ns3:SendCtg><ns3:Id>1</ns3:Id><ns3:Name>Население</ns3:Name></ns3:SendCtg></ns3:UserParameters>
        </ns3:historyRecord>
        <ns3:historyRecord>
          <ns3:AddressParameters>
            <ns3:OperationAddress><ns3:Index>102976</ns3:Index><ns3:Description>Москва ММПО</ns3:Description></ns3:OperationAddress>
          </ns3:AddressParameters>
          <ns3:ItemParameters><ns3:Barcode>RR123456785CN</ns3:Barcode></ns3:ItemParameters>
          <ns3:OperationParameters>
            <ns3:OperType><ns3:Id>14</ns3:Id><ns3:Name>Таможенное оформление</ns3:Name></ns3:OperType>
            <ns3:OperAttr><ns3:Id>1</ns3:Id><ns3:Name>Выпущено таможней</ns3:Name></ns3:OperAttr>
            <ns3:OperDate>2024-05-20T13:41:00.000+03:00</ns3:OperDate>
          </ns3:OperationParameters>
        </ns3:historyRecord>
        <ns3:historyRecord>
          <ns3:AddressParameters>
            <ns3:OperationAddress><ns3:Index>190000</ns3:Index><ns3:Description>Санкт-Петербург 190000</ns3:Description></ns3:OperationAddress>
          </ns3:AddressParameters>
          <ns3:ItemParameters><ns3:Barcode>RR123456785CN</ns3:Barcode></ns3:ItemParameters>
          <ns3:OperationParameters>
            <ns3:OperType><ns3:Id>2</ns3:Id><ns3:Name>Вручение</ns3:Name></ns3:OperType>
            <ns3:OperAttr><ns3:Id>1</ns3:Id><ns3:Name>Вручение адресату</ns3:Name></ns3:OperAttr>
            <ns3:OperDate>2024-05-27T15:02:00.000+03:00</ns3:OperDate>
          </ns3:OperationParameters>
        </ns3:historyRecord>
      </ns3:OperationHistoryData>
    </ns7:getOperationHistoryResponse>
  </S:Body>
</S:Envelope>"""


def _event(when: datetime, status: Status, code: str, text: str, where: str) -> TrackEvent:
    return TrackEvent(when, status, code, text, where, "Почта России")


EXPECTED_HISTORY = Tracked(
    number="RR123456785CN",
    status=Status.DELIVERED,
    raw_status="2.1",
    carrier="russianpost",
    events=(
        _event(datetime(2024, 5, 27, 12, 2, tzinfo=UTC), Status.DELIVERED, "2.1",
               "Вручение, Вручение адресату", "Санкт-Петербург 190000"),
        _event(datetime(2024, 5, 20, 10, 41, tzinfo=UTC), Status.IN_TRANSIT, "14.1",
               "Таможенное оформление, Выпущено таможней", "102976 Москва ММПО"),
        _event(datetime(2024, 5, 7, 2, 0, tzinfo=UTC), Status.IN_TRANSIT, "1.1",
               "Прием, Единичный", "Шэньчжэнь"),
    ),
)  # fmt: skip


def test_documented_history_parses_to_delivered_newest_first_in_utc() -> None:
    assert parse_operation_history(HISTORY, "RR123456785CN") == EXPECTED_HISTORY


def test_history_as_bytes() -> None:
    assert parse_operation_history(HISTORY.encode(), "RR123456785CN") == EXPECTED_HISTORY


EMPTY = """<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope"><S:Body>
<ns7:getOperationHistoryResponse xmlns:ns3="http://russianpost.org/operationhistory/data"
 xmlns:ns7="http://russianpost.org/operationhistory"><ns3:OperationHistoryData/></ns7:getOperationHistoryResponse>
</S:Body></S:Envelope>"""


def test_empty_history_is_not_found() -> None:
    assert isinstance(parse_operation_history(EMPTY, "RA644000005RU"), NotFound)


def _fault12(detail: str, reason: str) -> str:
    return f"""<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope"><S:Body><S:Fault>
<S:Code><S:Value>S:Sender</S:Value></S:Code><S:Reason><S:Text xml:lang="en">{reason}</S:Text></S:Reason>
<S:Detail><ns2:{detail} xmlns:ns2="http://russianpost.org/operationhistory/data">{reason}</ns2:{detail}></S:Detail>
</S:Fault></S:Body></S:Envelope>"""


def test_authorization_fault_raises_an_alarm() -> None:
    with pytest.raises(CarrierAlarm) as caught:
        parse_operation_history(_fault12("AuthorizationFault", "Access denied"), "RA644000005RU")
    assert caught.value.carrier == "russianpost"


def test_language_fault_raises_an_alarm() -> None:
    with pytest.raises(CarrierAlarm):
        parse_operation_history(_fault12("LanguageFault", "bad language"), "RA644000005RU")


def test_bad_barcode_fault_is_invalid_number() -> None:
    result = parse_operation_history(
        _fault12("OperationHistoryFault", "Некорректный ШПИ"), "RA6440RU"
    )
    assert isinstance(result, InvalidNumber)


def test_other_history_fault_is_temporary() -> None:
    result = parse_operation_history(
        _fault12("OperationHistoryFault", "Internal error"), "RA644000005RU"
    )
    assert isinstance(result, TemporaryFailure)


def test_soap11_fault_is_understood_too() -> None:
    body = """<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault>
    <faultcode>S:Server</faultcode><faultstring>Access denied</faultstring>
    <detail><AuthorizationFault>Access denied</AuthorizationFault></detail></S:Fault></S:Body></S:Envelope>"""
    with pytest.raises(CarrierAlarm):
        parse_operation_history(body, "RA644000005RU")


@pytest.mark.parametrize(
    "body",
    ["", "<html>502 Bad Gateway</html>", "<not-closed", "<a/>",
     HISTORY.replace("2024-05-27T15:02:00.000+03:00", "garbage")
     .replace("2024-05-20T13:41:00.000+03:00", "x").replace("2024-05-07T10:00:00.000+08:00", "y")],
)  # fmt: skip
def test_malformed_history_answers_never_raise(body: str) -> None:
    result = parse_operation_history(body, "RR123456785CN")
    assert isinstance(result, TemporaryFailure | NotFound)


def test_a_record_missing_its_type_is_skipped() -> None:
    body = HISTORY.replace("<ns3:Id>2</ns3:Id><ns3:Name>Вручение</ns3:Name>", "")
    result = parse_operation_history(body, "RR123456785CN")
    assert isinstance(result, Tracked)
    assert result.status is Status.IN_TRANSIT and len(result.events) == 2


BATCH = """<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>
 <ns2:answerByTicketResponse xmlns:ns2="http://fclient.russianpost.org/postserver" xmlns:ns3="http://fclient.russianpost.org">
  <value FileName="" FileTypeID="2" FileNumber="1" RecipientID="1" DatePreparation="21.05.2024 17:20:48">
   <ns3:Item Barcode="RR123456785CN">
     <ns3:Operation OperTypeID="1" OperCtgID="1" OperName="Прием" DateOper="07.05.2024 10:00:00" IndexOper=""/>
     <ns3:Operation OperTypeID="8" OperCtgID="2" OperName="Обработка" DateOper="25.05.2024 09:10:00" IndexOper="190000"/>
   </ns3:Item>
   <ns3:Item Barcode="RA000000005RU"><ns3:Error ErrorTypeID="12" ErrorName="Нет информации по запрошенному ШПИ"/></ns3:Item>
  </value>
 </ns2:answerByTicketResponse></S:Body></S:Envelope>"""


def test_documented_batch_answer() -> None:
    # DateOper has no offset: read as Moscow time (UTC+3).
    assert parse_answer_by_ticket(BATCH) == {
        "RR123456785CN": Tracked(
            number="RR123456785CN",
            status=Status.AVAILABLE_FOR_PICKUP,
            raw_status="8.2",
            carrier="russianpost",
            events=(
                _event(datetime(2024, 5, 25, 6, 10, tzinfo=UTC), Status.AVAILABLE_FOR_PICKUP,
                       "8.2", "Обработка", "190000"),
                _event(datetime(2024, 5, 7, 7, 0, tzinfo=UTC), Status.IN_TRANSIT, "1.1",
                       "Прием", ""),
            ),
        ),
        "RA000000005RU": NotFound("RA000000005RU", "Нет информации по запрошенному ШПИ"),
    }  # fmt: skip


def _answer_error(code: int) -> str:
    return f"""<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>
 <ns2:answerByTicketResponse xmlns:ns2="http://fclient.russianpost.org/postserver">
  <error ErrorTypeID="{code}" ErrorName="error {code}"/></ns2:answerByTicketResponse></S:Body></S:Envelope>"""


def test_answer_not_ready_is_reported_as_error_6() -> None:
    assert parse_answer_by_ticket(_answer_error(6)) == BatchError(6, "error 6")


def test_answer_expired_is_reported_as_error_17() -> None:
    assert parse_answer_by_ticket(_answer_error(17)) == BatchError(17, "error 17")


def test_answer_auth_error_raises_an_alarm() -> None:
    with pytest.raises(CarrierAlarm):
        parse_answer_by_ticket(_answer_error(3))


def test_error_fields_as_child_elements_are_read_too() -> None:
    body = """<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>
    <ns2:answerByTicketResponse xmlns:ns2="http://fclient.russianpost.org/postserver"><value>
    <error><ErrorTypeID>6</ErrorTypeID><ErrorName>not ready</ErrorName></error></value>
    </ns2:answerByTicketResponse></S:Body></S:Envelope>"""
    assert parse_answer_by_ticket(body) == BatchError(6, "not ready")


def test_batch_item_format_error_is_invalid_number() -> None:
    body = BATCH.replace('ErrorTypeID="12"', 'ErrorTypeID="2"')
    result = parse_answer_by_ticket(body)
    assert isinstance(result, dict)
    assert isinstance(result["RA000000005RU"], InvalidNumber)


@pytest.mark.parametrize("body", ["", "junk", "<a/>", "<S:Envelope xmlns:S='x'/>"])
def test_malformed_batch_answers_never_raise(body: str) -> None:
    assert isinstance(parse_answer_by_ticket(body), BatchError)
    assert isinstance(parse_ticket_response(body), BatchError)


TICKET = """<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>
<ns2:ticketResponse xmlns:ns2="http://fclient.russianpost.org/postserver"><value>20150917162048476CLIENTID</value>
</ns2:ticketResponse></S:Body></S:Envelope>"""


def test_ticket_answer() -> None:
    assert parse_ticket_response(TICKET) == "20150917162048476CLIENTID"


def test_ticket_error_and_auth_alarm() -> None:
    err = TICKET.replace(
        "<value>20150917162048476CLIENTID</value>",
        '<error ErrorTypeID="18" ErrorName="busy"/>',
    )
    assert parse_ticket_response(err) == BatchError(18, "busy")
    with pytest.raises(CarrierAlarm):
        parse_ticket_response(err.replace('"18"', '"3"'))


def test_request_envelopes_are_well_formed_and_escape_credentials() -> None:
    single = ET.fromstring(operation_history_request("RA644000005RU", "lo<g", "p&w"))
    assert single.find(f".//{{{NS_OPER}}}getOperationHistory") is not None
    assert single.findtext(f".//{{{NS_DATA}}}Barcode") == "RA644000005RU"
    assert single.findtext(f".//{{{NS_DATA}}}login") == "lo<g"
    assert single.findtext(f".//{{{NS_DATA}}}password") == "p&w"
    batch = ET.fromstring(ticket_request(["A1", 'B"2'], "l", "p"))
    assert [i.get("Barcode") for i in batch.iter(f"{{{NS_FCL}}}Item")] == ["A1", 'B"2']
    assert batch.find(f".//{{{NS_POS}}}ticketRequest") is not None
    answer = ET.fromstring(answer_request("T1", "l", "p"))
    assert answer.findtext(".//ticket") == "T1"
