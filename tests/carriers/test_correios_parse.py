"""Correios response bodies in the documented shape (§3.5), beside the normalised results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carriers.base import InvalidNumber, NotFound, TemporaryFailure, Tracked, TrackEvent
from carriers.correios import (
    Token,
    error_messages,
    looks_trackable,
    parse_object,
    parse_objects,
    parse_token,
)
from carriers.status import Status

SAMPLE: dict[str, Any] = {
    "versao": "3.5.38",
    "quantidade": 1,
    "resultado": "Todos os Eventos",
    "objetos": [{
        "codObjeto": "LB528961554HK",
        "tipoPostal": {"sigla": "LB", "descricao": "OBJETO INTERNACIONAL", "categoria": "ENCOMENDA"},
        "dtPrevista": "2024-06-10T23:59:59",
        "eventos": [
            {"codigo": "BDE", "tipo": "01", "dtHrCriado": "2024-05-28T14:19:48",
             "descricao": "Objeto entregue ao destinatário",
             "unidade": {"codSro": "24020972", "tipo": "Unidade de Distribuição",
                         "endereco": {"cidade": "NITEROI", "uf": "RJ"}},
             "urlIcone": "/public-resources/img/smile.png"},
            {"codigo": "OEC", "tipo": "01", "dtHrCriado": "2024-05-28T09:19:54",
             "descricao": "Objeto saiu para entrega ao destinatário",
             "unidade": {"tipo": "Unidade de Distribuição",
                         "endereco": {"cep": "24240972", "bairro": "SANTA ROSA", "cidade": "NITEROI", "uf": "RJ"}}},
            {"codigo": "PAR", "tipo": "10", "dtHrCriado": "2024-05-23T11:02:10",
             "descricao": "Fiscalização aduaneira finalizada",
             "unidade": {"tipo": "Unidade Operacional", "endereco": {"cidade": "CURITIBA", "uf": "PR"}}},
            {"codigo": "PAR", "tipo": "31", "dtHrCriado": "2024-05-22T20:41:33",
             "descricao": "Pagamento confirmado",
             "unidade": {"tipo": "País", "nome": "BRASIL", "endereco": {}}},
            {"codigo": "PAR", "tipo": "17", "dtHrCriado": "2024-05-21T16:00:05",
             "descricao": "Aguardando pagamento", "detalhe": "Acesse o ambiente Minhas Importações",
             "unidade": {"tipo": "País", "nome": "BRASIL", "endereco": {}}},
            {"codigo": "PAR", "tipo": "21", "dtHrCriado": "2024-05-21T09:12:00",
             "descricao": "Encaminhado para fiscalização aduaneira",
             "unidade": {"tipo": "Unidade Operacional", "endereco": {"cidade": "CURITIBA", "uf": "PR"}}},
            {"codigo": "PAR", "tipo": "16", "dtHrCriado": "2024-05-20T07:40:00",
             "descricao": "Objeto recebido pelos Correios do Brasil",
             "unidade": {"tipo": "Unidade Operacional", "endereco": {"cidade": "CURITIBA", "uf": "PR"}}},
            {"codigo": "RO", "tipo": "01", "dtHrCriado": "2024-05-12T12:22:00",
             "descricao": "Objeto em trânsito - por favor aguarde",
             "unidade": {"codSro": "00344000", "nome": "HONG KONG", "tipo": "País", "endereco": {}},
             "unidadeDestino": {"codSro": "00500001", "nome": "Unidade de Tratamento Internacional",
                                "tipo": "País", "endereco": {"uf": "BR"}}},
        ],
    }],
}  # fmt: skip


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _event(when: datetime, status: Status, code: str, text: str, where: str) -> TrackEvent:
    return TrackEvent(when, status, code, text, where, "Correios")


# Brasília is UTC-3 (no daylight saving since 2019).
EXPECTED_SAMPLE = Tracked(
    number="LB528961554HK",
    status=Status.DELIVERED,
    raw_status="BDE-01",
    carrier="correios",
    events=(
        _event(_utc(2024, 5, 28, 17, 19, 48), Status.DELIVERED, "BDE-01",
               "Objeto entregue ao destinatário", "NITEROI/RJ"),
        _event(_utc(2024, 5, 28, 12, 19, 54), Status.OUT_FOR_DELIVERY, "OEC-01",
               "Objeto saiu para entrega ao destinatário", "NITEROI/RJ"),
        _event(_utc(2024, 5, 23, 14, 2, 10), Status.IN_TRANSIT, "PAR-10",
               "Fiscalização aduaneira finalizada", "CURITIBA/PR"),
        _event(_utc(2024, 5, 22, 23, 41, 33), Status.CUSTOMS_HOLD, "PAR-31",
               "Pagamento confirmado", "BRASIL"),
        _event(_utc(2024, 5, 21, 19, 0, 5), Status.CUSTOMS_PAYMENT_DUE, "PAR-17",
               "Aguardando pagamento Acesse o ambiente Minhas Importações", "BRASIL"),
        _event(_utc(2024, 5, 21, 12, 12, 0), Status.CUSTOMS_HOLD, "PAR-21",
               "Encaminhado para fiscalização aduaneira", "CURITIBA/PR"),
        _event(_utc(2024, 5, 20, 10, 40, 0), Status.IN_TRANSIT, "PAR-16",
               "Objeto recebido pelos Correios do Brasil", "CURITIBA/PR"),
        _event(_utc(2024, 5, 12, 15, 22, 0), Status.IN_TRANSIT, "RO-01",
               "Objeto em trânsito - por favor aguarde", "HONG KONG"),
    ),
)  # fmt: skip


def test_documented_sample_parses_to_delivered_with_every_event_in_utc() -> None:
    assert parse_objects(SAMPLE, ["LB528961554HK"]) == [EXPECTED_SAMPLE]


def test_number_is_reported_as_requested() -> None:
    [result] = parse_objects(SAMPLE, ["lb 528961554 hk"])
    assert isinstance(result, Tracked) and result.number == "lb 528961554 hk"


def test_not_found_entry_in_a_200_answer() -> None:
    body = {"objetos": [{"codObjeto": "AA000000005BR",
                         "mensagem": "SRO-020: Objeto não encontrado na base de dados dos Correios."}]}  # fmt: skip
    [result] = parse_objects(body, ["AA000000005BR"])
    assert isinstance(result, NotFound)
    assert result.detail.startswith("SRO-020")


def test_invalid_object_message_is_invalid_number() -> None:
    body = {"objetos": [{"codObjeto": "XX1BR", "mensagem": "SRO-019: Objeto inválido"}]}
    assert parse_objects(body, ["XX1BR"]) == [InvalidNumber("XX1BR", "SRO-019: Objeto inválido")]


def test_an_unknown_message_is_temporary() -> None:
    body = {"objetos": [{"codObjeto": "AA000000005BR", "mensagem": "SRO-099: erro interno"}]}
    [result] = parse_objects(body, ["AA000000005BR"])
    assert isinstance(result, TemporaryFailure)


def test_a_list_answer_is_matched_by_codobjeto_in_any_order() -> None:
    body = {"objetos": [
        {"codObjeto": "AA000000005BR", "mensagem": "SRO-020: Objeto não encontrado"},
        SAMPLE["objetos"][0],
    ]}  # fmt: skip
    results = parse_objects(body, ["LB528961554HK", "AA000000005BR", "QQ850419295BR"])
    assert results[0] == EXPECTED_SAMPLE
    assert isinstance(results[1], NotFound)
    assert isinstance(results[2], TemporaryFailure)  # left out of the answer: ask again


def test_customs_finished_with_taxes_open_is_payment_due() -> None:
    obj = {"codObjeto": "QQ850419295BR", "eventos": [
        {"codigo": "PAR", "tipo": "10", "dtHrCriado": "2024-05-23T11:02:10",
         "descricao": "Fiscalização aduaneira finalizada"},
        {"codigo": "FC", "tipo": "26", "dtHrCriado": "2024-05-22T11:02:10",
         "descricao": "RFB - Objeto Tributado"},
    ]}  # fmt: skip
    result = parse_object(obj, "QQ850419295BR")
    assert isinstance(result, Tracked)
    assert result.status is Status.CUSTOMS_PAYMENT_DUE
    assert result.raw_status == "PAR-10"


def test_a_correction_event_withdraws_the_one_before() -> None:
    obj = {"codObjeto": "QQ850419295BR", "eventos": [
        {"codigo": "EST", "tipo": "01", "dtHrCriado": "2024-05-28T15:00:00",
         "descricao": "Favor desconsiderar a informação anterior"},
        {"codigo": "BDE", "tipo": "01", "dtHrCriado": "2024-05-28T14:00:00", "descricao": "entregue"},
        {"codigo": "OEC", "tipo": "01", "dtHrCriado": "2024-05-28T09:00:00", "descricao": "saiu"},
    ]}  # fmt: skip
    result = parse_object(obj, "QQ850419295BR")
    assert isinstance(result, Tracked)
    assert result.status is Status.OUT_FOR_DELIVERY
    assert result.raw_status == "BDE-01"  # newest non-correction code, kept as the carrier said
    assert result.events[0].status is Status.OUT_FOR_DELIVERY
    assert len(result.events) == 3


def test_events_out_of_order_are_sorted_newest_first() -> None:
    obj = {"codObjeto": "QQ850419295BR", "eventos": [
        {"codigo": "PO", "tipo": "01", "dtHrCriado": "2024-05-01T10:00:00", "descricao": "postado"},
        {"codigo": "OEC", "tipo": "01", "dtHrCriado": "2024-05-09T10:00:00", "descricao": "saiu"},
    ]}  # fmt: skip
    result = parse_object(obj, "QQ850419295BR")
    assert isinstance(result, Tracked) and result.status is Status.OUT_FOR_DELIVERY


@pytest.mark.parametrize(
    "body",
    [None, [], "html", 42, {}, {"objetos": None}, {"objetos": [None, 3, {"codObjeto": 5}]},
     {"objetos": [{"codObjeto": "QQ850419295BR", "eventos": [None, {"codigo": "BDE"},
      {"codigo": "BDE", "tipo": "01", "dtHrCriado": "yesterday"}]}]}],
)  # fmt: skip
def test_malformed_bodies_give_temporary_failures_never_exceptions(body: Any) -> None:
    [result] = parse_objects(body, ["QQ850419295BR"])
    assert isinstance(result, TemporaryFailure)


def test_empty_event_list_is_not_found() -> None:
    body = {"objetos": [{"codObjeto": "QQ850419295BR", "eventos": []}]}
    assert isinstance(parse_objects(body, ["QQ850419295BR"])[0], NotFound)


def test_numeric_tipo_is_accepted() -> None:
    obj = {"codObjeto": "QQ850419295BR",
           "eventos": [{"codigo": "BDE", "tipo": 1, "dtHrCriado": "2024-05-01T10:00:00"}]}  # fmt: skip
    result = parse_object(obj, "QQ850419295BR")
    assert isinstance(result, Tracked) and result.raw_status == "BDE-01"


def test_error_body_messages() -> None:
    assert error_messages({"msgs": ["SRO-018: idioma"], "causa": "x"}) == ["SRO-018: idioma"]
    assert error_messages({"msgs": "one"}) == ["one"]
    assert error_messages("<html>") == []


@pytest.mark.parametrize(
    ("number", "ok"),
    [("QQ850419295BR", True), ("qq 850419295 br", True), ("AA123456789BR", True),
     ("LP00612345678901", False), ("12345", False)],
)  # fmt: skip
def test_only_s10_shapes_are_sent(number: str, ok: bool) -> None:
    assert looks_trackable(number) is ok


NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_token_answer_with_brasilia_expiry() -> None:
    body = {"token": "abc", "expiraEm": "2024-05-02T09:00:00", "ambiente": "PRODUCAO"}
    assert parse_token(body, NOW) == Token("abc", datetime(2024, 5, 2, 12, 0, tzinfo=UTC))


def test_token_answer_with_offset_expiry() -> None:
    token = parse_token({"token": "abc", "expiraEm": "2024-05-02T09:00:00Z"}, NOW)
    assert token == Token("abc", datetime(2024, 5, 2, 9, 0, tzinfo=UTC))


def test_token_without_expiry_gets_a_conservative_lifetime() -> None:
    token = parse_token({"token": "abc"}, NOW)
    assert token is not None and token.expires_at == NOW + timedelta(hours=23)


@pytest.mark.parametrize("body", [None, {}, {"token": ""}, {"token": 5}, "x"])
def test_no_token_in_answer(body: Any) -> None:
    assert parse_token(body, NOW) is None


def test_token_freshness_keeps_a_margin() -> None:
    token = Token("abc", NOW + timedelta(minutes=10))
    assert token.fresh(NOW, timedelta(minutes=5))
    assert not token.fresh(NOW, timedelta(minutes=15))
    assert not Token("", NOW + timedelta(days=1)).fresh(NOW, timedelta(0))
