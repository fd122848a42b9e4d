"""The Correios code table, checked pair by pair against reference §3.4."""

from __future__ import annotations

import pytest

from carriers.correios_codes import (
    CODE_TABLE,
    DELIVERY_GROUPS,
    event_status,
    overall_status,
)
from carriers.status import Status

S = Status

# Written from the reference, not from the table: (codigo, tipo, status).
BD_EXPECTED = {
    "01": S.DELIVERED, "67": S.DELIVERED, "68": S.DELIVERED, "70": S.DELIVERED,
    "23": S.RETURNED,
    "24": S.AVAILABLE_FOR_PICKUP,
    "02": S.DELIVERY_FAILURE, "18": S.DELIVERY_FAILURE, "19": S.DELIVERY_FAILURE,
    "20": S.DELIVERY_FAILURE, "25": S.DELIVERY_FAILURE, "34": S.DELIVERY_FAILURE,
    "35": S.DELIVERY_FAILURE, "46": S.DELIVERY_FAILURE, "47": S.DELIVERY_FAILURE,
    "82": S.DELIVERY_FAILURE,
    "04": S.RETURNING, "05": S.RETURNING, "06": S.RETURNING, "07": S.RETURNING,
    "08": S.RETURNING, "10": S.RETURNING, "21": S.RETURNING, "26": S.RETURNING,
    "36": S.RETURNING, "42": S.RETURNING, "48": S.RETURNING, "49": S.RETURNING,
    "64": S.RETURNING, "89": S.RETURNING,
    "28": S.EXCEPTION, "37": S.EXCEPTION, "29": S.EXCEPTION, "80": S.EXCEPTION,
    "98": S.EXCEPTION, "50": S.EXCEPTION, "51": S.EXCEPTION, "52": S.EXCEPTION,
    "43": S.EXCEPTION, "71": S.EXCEPTION, "72": S.EXCEPTION, "73": S.EXCEPTION,
    "74": S.EXCEPTION, "75": S.EXCEPTION, "76": S.EXCEPTION, "40": S.EXCEPTION,
    "81": S.EXCEPTION, "61": S.EXCEPTION, "62": S.EXCEPTION, "83": S.EXCEPTION,
    "54": S.CUSTOMS_PAYMENT_DUE, "58": S.CUSTOMS_PAYMENT_DUE, "59": S.CUSTOMS_PAYMENT_DUE,
    "55": S.CUSTOMS_HOLD, "56": S.CUSTOMS_HOLD, "77": S.CUSTOMS_HOLD,
    "57": S.IN_TRANSIT,
}  # fmt: skip

OTHER_EXPECTED = [
    # Customs / import flow (PAR).
    ("PAR", "18", S.IN_TRANSIT), ("PAR", "15", S.IN_TRANSIT), ("PAR", "16", S.IN_TRANSIT),
    ("PAR", "20", S.IN_TRANSIT), ("PAR", "28", S.IN_TRANSIT),
    ("PAR", "21", S.CUSTOMS_HOLD), ("PAR", "22", S.CUSTOMS_HOLD), ("PAR", "12", S.CUSTOMS_HOLD),
    ("PAR", "14", S.CUSTOMS_HOLD), ("PAR", "27", S.CUSTOMS_HOLD), ("PAR", "31", S.CUSTOMS_HOLD),
    ("PAR", "32", S.CUSTOMS_HOLD),
    ("PAR", "17", S.CUSTOMS_PAYMENT_DUE), ("PAR", "11", S.CUSTOMS_PAYMENT_DUE),
    ("PAR", "30", S.CUSTOMS_PAYMENT_DUE), ("PAR", "33", S.CUSTOMS_PAYMENT_DUE),
    ("PAR", "10", S.IN_TRANSIT), ("PAR", "19", S.IN_TRANSIT), ("PAR", "34", S.IN_TRANSIT),
    ("PAR", "42", S.IN_TRANSIT),
    ("PAR", "25", S.EXCEPTION), ("PAR", "41", S.EXCEPTION),
    ("PAR", "23", S.RETURNING), ("PAR", "24", S.RETURNING), ("PAR", "26", S.RETURNING),
    ("PAR", "40", S.RETURNING),
    ("PAR", "13", S.RETURNED),
    # Fiscalização (FC).
    ("FC", "01", S.RETURNING), ("FC", "47", S.RETURNING), ("FC", "03", S.IN_TRANSIT),
    ("FC", "04", S.DELIVERY_FAILURE), ("FC", "11", S.EXCEPTION), ("FC", "24", S.CUSTOMS_HOLD),
    ("FC", "26", S.CUSTOMS_PAYMENT_DUE), ("FC", "12", S.CUSTOMS_HOLD), ("FC", "13", S.CUSTOMS_HOLD),
    ("FC", "19", S.CUSTOMS_HOLD), ("FC", "32", S.CUSTOMS_HOLD), ("FC", "33", S.CUSTOMS_HOLD),
    ("FC", "34", S.CUSTOMS_HOLD), ("FC", "35", S.CUSTOMS_HOLD), ("FC", "36", S.CUSTOMS_HOLD),
    ("FC", "37", S.CUSTOMS_HOLD),
    # Posting, transit, delivery round, pickup.
    ("PO", "01", S.IN_TRANSIT), ("PO", "09", S.IN_TRANSIT), ("RO", "01", S.IN_TRANSIT),
    ("DO", "01", S.IN_TRANSIT), ("DO", "02", S.IN_TRANSIT),
    ("OEC", "01", S.OUT_FOR_DELIVERY), ("OEC", "09", S.RETURNING),
    ("LDI", "01", S.AVAILABLE_FOR_PICKUP), ("LDI", "02", S.AVAILABLE_FOR_PICKUP),
    ("LDI", "03", S.AVAILABLE_FOR_PICKUP), ("LDI", "04", S.AVAILABLE_FOR_PICKUP),
    ("LDI", "11", S.AVAILABLE_FOR_PICKUP), ("LDI", "13", S.AVAILABLE_FOR_PICKUP),
    ("LDI", "14", S.AVAILABLE_FOR_PICKUP),
    ("CO", "01", S.IN_TRANSIT), ("CO", "05", S.INFO_RECEIVED), ("CO", "08", S.DELIVERED),
    ("CO", "09", S.EXCEPTION),
    ("BLQ", "51", S.CUSTOMS_HOLD),
]  # fmt: skip

ALL_EXPECTED = [
    (group, tipo, status) for group in DELIVERY_GROUPS for tipo, status in BD_EXPECTED.items()
] + OTHER_EXPECTED


@pytest.mark.parametrize(("codigo", "tipo", "expected"), ALL_EXPECTED)
def test_each_documented_code_pair_maps_to_its_status(
    codigo: str, tipo: str, expected: Status
) -> None:
    assert event_status(codigo, tipo) is expected


def test_the_table_holds_exactly_the_documented_pairs() -> None:
    assert set(CODE_TABLE) == {(c, t) for c, t, _ in ALL_EXPECTED}


def test_a_tipo_written_without_its_leading_zero_still_matches() -> None:
    assert event_status("bde", "1") is S.DELIVERED


@pytest.mark.parametrize(
    ("codigo", "tipo", "expected"),
    [("PAR", "99", S.CUSTOMS_HOLD), ("BLQ", "01", S.EXCEPTION), ("LDI", "77", S.AVAILABLE_FOR_PICKUP),
     ("OEC", "05", S.OUT_FOR_DELIVERY), ("XYZ", "01", S.IN_TRANSIT), ("BDE", "99", S.IN_TRANSIT)],
)  # fmt: skip
def test_unknown_pairs_fall_back_on_their_group(codigo: str, tipo: str, expected: Status) -> None:
    assert event_status(codigo, tipo) is expected


def test_newest_event_decides() -> None:
    assert overall_status([("BDE", "01"), ("OEC", "01"), ("PO", "01")]) is S.DELIVERED


def test_a_correction_withdraws_the_event_before_it() -> None:
    # Newest first: EST withdraws the (wrong) delivery scanned just before it.
    codes = [("EST", "01"), ("BDE", "01"), ("OEC", "01"), ("PO", "01")]
    assert overall_status(codes) is S.OUT_FOR_DELIVERY


def test_only_corrections_means_no_status() -> None:
    assert overall_status([("EST", "01")]) is None
    assert overall_status([]) is None


def test_customs_finished_with_an_unpaid_tax_is_payment_due() -> None:
    codes = [("PAR", "10"), ("PAR", "17"), ("PAR", "21"), ("PAR", "16")]
    assert overall_status(codes) is S.CUSTOMS_PAYMENT_DUE


def test_customs_finished_after_a_taxation_notice_is_payment_due() -> None:
    assert overall_status([("PAR", "10"), ("FC", "26"), ("PAR", "21")]) is S.CUSTOMS_PAYMENT_DUE


def test_customs_finished_after_payment_confirmed_moves_on() -> None:
    codes = [("PAR", "10"), ("PAR", "31"), ("PAR", "17"), ("PAR", "21")]
    assert overall_status(codes) is S.IN_TRANSIT


def test_customs_finished_without_any_tax_moves_on() -> None:
    assert overall_status([("PAR", "10"), ("PAR", "21"), ("PAR", "16")]) is S.IN_TRANSIT


def test_aguardando_pagamento_is_payment_due_on_its_own() -> None:
    assert overall_status([("PAR", "17"), ("PAR", "10"), ("PAR", "21")]) is S.CUSTOMS_PAYMENT_DUE
