"""Tracking-number shapes, checked against the real numbers in the carrier reference."""

import pytest

from carriers.numbers import NumberFormat, identify, normalise, number_warning, s10_check_digit


def test_s10_check_digit_worked_example() -> None:
    assert s10_check_digit("47312482") == 9


@pytest.mark.parametrize(
    "number",
    ["EA123456785US", "QQ850419295BR", "QH991577104BR", "PJ907948743BR", "YJ460348417BR",
     "QP302718234BR", "SI192420171BR", "LB528961554HK", "RR123456785CN"],
)  # fmt: skip
def test_real_s10_numbers_pass_the_check_digit(number: str) -> None:
    info = identify(number)
    assert info.format is NumberFormat.S10
    assert info.check_digit_ok is True
    assert info.warning is None


@pytest.mark.parametrize("number", ["RR123456789CN", "RA644000001RU", "AA123456789BR"])
def test_doc_placeholders_fail_the_check_digit_with_a_warning_not_a_rejection(number: str) -> None:
    info = identify(number)
    assert info.format is NumberFormat.S10
    assert info.check_digit_ok is False
    assert info.warning is not None and "check digit" in info.warning


@pytest.mark.parametrize(
    ("number", "fmt"),
    [
        ("YT2412345678901234", NumberFormat.YUNEXPRESS),
        ("LP00612345678901", NumberFormat.CAINIAO),
        ("4PX3001234567890CN", NumberFormat.FOURPX),
        ("9400109104250532908587", NumberFormat.USPS_IMPB),
        ("45008378901234", NumberFormat.RUSSIAN_POST_DOMESTIC),
        ("00340434292135100124", NumberFormat.DHL),
        ("hello", NumberFormat.UNKNOWN),
    ],
)
def test_forwarder_and_domestic_formats(number: str, fmt: NumberFormat) -> None:
    assert identify(number).format is fmt


def test_normalise_strips_spaces_and_dashes() -> None:
    assert normalise(" rr 123-456-785 cn ") == "RR123456785CN"


def test_reserved_service_indicator_is_not_s10() -> None:
    assert identify("JJ123456785CN").format is NumberFormat.UNKNOWN


@pytest.mark.parametrize(
    "number",
    [
        "RR123456785CN",  # S10, check digit right
        "RR123456789CN",  # S10, check digit wrong
        "JR123456785CN",  # reserved service indicator: not S10
        "rr123456785cn",  # not normalised
        "RR 1234 5678 5CN",
        "LP12345678901234",
        "YT1234567890123456",
        "ZZ99",
        "RR١٢٣٤٥٦٧٨5CN",  # digits of another script
    ],
)
def test_number_warning_is_the_warning_identify_gives(number: str) -> None:
    assert number_warning(number) == identify(number).warning
