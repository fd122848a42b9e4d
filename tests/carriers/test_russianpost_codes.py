"""The Russian Post operation table, checked operation by operation against reference §4.4."""

from __future__ import annotations

import pytest

from carriers.russianpost_codes import CODE_TABLE, is_final, operation_status
from carriers.status import Status

S = Status

# (OperType, OperAttr, status), written from the reference; None = any other attribute.
EXPECTED = [
    (1, 1, S.IN_TRANSIT), (1, 4, S.IN_TRANSIT),
    *[(2, a, S.DELIVERED) for a in (1, 3, 5, 6, 8, 10, 11, 12, 13)],
    *[(2, a, S.RETURNED) for a in (2, 4, 7, 9)],
    *[(3, a, S.RETURNING) for a in range(1, 14)],
    (4, 1, S.IN_TRANSIT), (4, 2, S.IN_TRANSIT), (4, 3, S.IN_TRANSIT),
    (4, 4, S.EXCEPTION), (4, 5, S.EXCEPTION), (4, 6, S.EXCEPTION),
    (5, 1, S.EXCEPTION), (5, 2, S.EXCEPTION), (5, 3, S.IN_TRANSIT), (5, 8, S.EXCEPTION),
    (5, 9, S.DELIVERY_FAILURE),
    *[(6, a, S.AVAILABLE_FOR_PICKUP) for a in (1, 2, 3, 4)], (6, 5, S.CUSTOMS_HOLD),
    *[(7, a, S.EXCEPTION) for a in (1, 2, 3, 4)],
    *[(8, a, S.IN_TRANSIT) for a in (0, 1, 3, 4, 5, 6, 7, 8, 13, 21, 22, 26)],
    *[(8, a, S.AVAILABLE_FOR_PICKUP) for a in (2, 9, 10, 14, 23, 24, 25, 27, 28, 33, 35)],
    (8, 15, S.OUT_FOR_DELIVERY), (8, 18, S.OUT_FOR_DELIVERY),
    (9, 0, S.IN_TRANSIT), (10, 0, S.IN_TRANSIT), (11, 0, S.CUSTOMS_HOLD),
    *[(12, a, S.DELIVERY_FAILURE) for a in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 19, 27)],
    (12, 14, S.EXCEPTION), (12, 15, S.CUSTOMS_PAYMENT_DUE), (12, 23, S.EXCEPTION),
    (12, 24, S.EXCEPTION), (12, 28, S.EXCEPTION),
    (13, 0, S.IN_TRANSIT),
    (14, 1, S.IN_TRANSIT), (14, 2, S.RETURNING), (14, 3, S.CUSTOMS_HOLD), (14, 4, S.EXCEPTION),
    (14, 5, S.CUSTOMS_PAYMENT_DUE), (14, 6, S.CUSTOMS_PAYMENT_DUE), (14, 7, S.CUSTOMS_HOLD),
    (14, 8, S.CUSTOMS_HOLD), (14, 9, S.EXCEPTION), (14, 10, S.CUSTOMS_HOLD),
    (14, 11, S.CUSTOMS_HOLD), (14, 12, S.CUSTOMS_HOLD), (14, 13, S.IN_TRANSIT),
    (14, 14, S.CUSTOMS_PAYMENT_DUE), (14, 15, S.CUSTOMS_HOLD), (14, 16, S.IN_TRANSIT),
    (14, 17, S.CUSTOMS_PAYMENT_DUE), (14, 18, S.EXCEPTION), (14, 19, S.CUSTOMS_HOLD),
    (15, 0, S.EXCEPTION), (16, 0, S.EXCEPTION), (17, 0, S.EXCEPTION), (18, 0, S.EXCEPTION),
    (19, 0, S.CUSTOMS_HOLD), (20, 0, S.INFO_RECEIVED),
    (21, 1, S.DELIVERED), (21, 2, S.DELIVERED), (21, 3, S.DELIVERED),
    *[(22, a, S.DELIVERY_FAILURE) for a in range(1, 10)],
    (23, 0, S.EXCEPTION), (24, 1, S.CUSTOMS_HOLD), (24, 1054, S.CUSTOMS_HOLD), (25, 0, S.IN_TRANSIT),
    (26, 1, S.EXCEPTION), (26, 2, S.EXCEPTION), (27, 0, S.INFO_RECEIVED), (28, 0, S.INFO_RECEIVED),
    (29, 0, S.IN_TRANSIT), (30, 0, S.IN_TRANSIT), (31, 1, S.IN_TRANSIT), (31, 82, S.IN_TRANSIT),
    (32, 0, S.IN_TRANSIT), (33, 1, S.IN_TRANSIT), (33, 3, S.IN_TRANSIT), (34, 0, S.IN_TRANSIT),
    (35, 5, S.DELIVERY_FAILURE), (36, 1, S.IN_TRANSIT), (37, 0, S.INFO_RECEIVED),
    (38, 4, S.DELIVERY_FAILURE), (39, 3, S.CUSTOMS_HOLD), (40, 1, S.CUSTOMS_HOLD),
    (41, 1, S.CUSTOMS_HOLD), (41, 2, S.CUSTOMS_HOLD), (41, 3, S.CUSTOMS_PAYMENT_DUE),
    (41, 4, S.CUSTOMS_HOLD), (41, 5, S.CUSTOMS_PAYMENT_DUE),
    (42, 1, S.DELIVERY_FAILURE), (42, 14, S.EXCEPTION), (42, 15, S.CUSTOMS_PAYMENT_DUE),
    (43, 0, S.IN_TRANSIT), (44, 0, S.EXCEPTION),
]  # fmt: skip


@pytest.mark.parametrize(("oper_type", "oper_attr", "expected"), EXPECTED)
def test_each_documented_operation_maps_to_its_status(
    oper_type: int, oper_attr: int, expected: Status
) -> None:
    assert operation_status(oper_type, oper_attr) is expected


def test_every_documented_type_has_a_default() -> None:
    assert {t for t, a in CODE_TABLE if a is None} == set(range(1, 45))


def test_a_missing_attribute_uses_the_type_default() -> None:
    assert operation_status(2, None) is S.DELIVERED
    assert operation_status(14, None) is S.CUSTOMS_HOLD


def test_an_unknown_type_reads_as_movement() -> None:
    assert operation_status(99, 1) is S.IN_TRANSIT


@pytest.mark.parametrize(
    ("oper_type", "oper_attr", "final"),
    [(2, 1, True), (2, 2, True), (5, 1, True), (5, 2, True), (5, 3, False), (15, 0, True),
     (16, 0, True), (17, 0, True), (18, 0, True), (8, 2, False), (14, 1, False)],
)  # fmt: skip
def test_final_operations_per_the_sdk(oper_type: int, oper_attr: int, final: bool) -> None:
    assert is_final(oper_type, oper_attr) is final


def test_final_operations_map_to_final_or_exception_statuses() -> None:
    for (oper_type, oper_attr), status in CODE_TABLE.items():
        if is_final(oper_type, oper_attr):
            assert status in (S.DELIVERED, S.RETURNED, S.EXCEPTION), (oper_type, oper_attr)
