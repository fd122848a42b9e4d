"""Tracking-number formats: what a number looks like, and which carriers could know it.

The shapes come from `reference/carrier-apis.md` section 6. They are heuristics used to route a
number and to warn about a mistyped one; they never reject a number a carrier might accept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from operator import mul

S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_ASCII_ZERO_TIMES_WEIGHTS = ord("0") * sum(S10_WEIGHTS)  # digits read as bytes are off by ord("0")
_S10 = re.compile(r"^([A-Z]{2})(\d{8})(\d)([A-Z]{2})$")
# Service indicators J and K are reserved by the UPU: no valid item carries them.
_S10_RESERVED_SERVICE = frozenset("JK")
_STRIP = re.compile(r"[\s\-]")


class NumberFormat(StrEnum):
    S10 = "s10"  # UPU S10: two letters, 8 digits, check digit, issuing country
    YUNEXPRESS = "yunexpress"
    CAINIAO = "cainiao"
    FOURPX = "4px"
    USPS_IMPB = "usps_impb"
    RUSSIAN_POST_DOMESTIC = "russianpost_domestic"
    DHL = "dhl"
    UNKNOWN = "unknown"


# Forwarder and domestic formats, checked in order; the first match names the format.
_PATTERNS: tuple[tuple[NumberFormat, re.Pattern[str]], ...] = (
    (NumberFormat.YUNEXPRESS, re.compile(r"^YT\d{16}$")),
    (NumberFormat.CAINIAO, re.compile(r"^LP\d{14}$")),
    (NumberFormat.FOURPX, re.compile(r"^4PX\d{10,16}(CN)?$")),
    (NumberFormat.USPS_IMPB, re.compile(r"^(420\d{5}(\d{4})?)?9[1-5](\d{20}|\d{24})$")),
    (NumberFormat.RUSSIAN_POST_DOMESTIC, re.compile(r"^\d{14}$")),
    # SSCC: 18 digits starting 3, optionally behind the "00" application identifier (the
    # reference gives 3\d{18}, but its own example 00340434292135100124 has 17 digits after the 3).
    (NumberFormat.DHL, re.compile(r"^(\d{12}|(00)?3\d{17})$")),
)


@dataclass(frozen=True)
class NumberInfo:
    """What the format of one tracking number says about it."""

    number: str
    format: NumberFormat
    country: str | None = None  # issuing country of an S10 number
    check_digit_ok: bool | None = None  # None where the format has no check digit

    @property
    def warning(self) -> str | None:
        """A message for a person when the number looks mistyped; None when it looks fine."""
        if self.format is NumberFormat.UNKNOWN:
            return f"{self.number!r} matches no known tracking-number format"
        if self.check_digit_ok is False:
            return f"{self.number!r} fails the UPU S10 check digit (mistyped?)"
        return None


def normalise(number: str) -> str:
    """Upper case without spaces or dashes, the way carriers print and accept numbers."""
    if number.isalnum():  # nothing to strip: the usual case, and a regex pass costs more
        return number.upper()
    return _STRIP.sub("", number).upper()


def s10_check_digit(serial: str) -> int:
    """The UPU S10 check digit of an 8-digit serial (weights 8,6,4,2,3,5,9,7; 10→0, 11→5)."""
    if len(serial) != 8 or not serial.isdigit():
        raise ValueError(f"an S10 serial has 8 digits, got {serial!r}")
    if serial.isascii():  # the usual case, spelled out: identify() runs once per imported number
        d = serial.encode("ascii")
        w = S10_WEIGHTS
        total = (
            w[0] * d[0] + w[1] * d[1] + w[2] * d[2] + w[3] * d[3]
            + w[4] * d[4] + w[5] * d[5] + w[6] * d[6] + w[7] * d[7]
            - _ASCII_ZERO_TIMES_WEIGHTS
        )  # fmt: skip
    else:  # digits of other scripts count by their value, as int() reads them
        total = sum(map(mul, map(int, serial), S10_WEIGHTS))
    check = 11 - total % 11
    return 0 if check == 10 else 5 if check == 11 else check


def identify(number: str) -> NumberInfo:
    """Classify a tracking number by its shape (after `normalise`)."""
    clean = normalise(number)
    match = _S10.match(clean)
    if match and match.group(1)[0] not in _S10_RESERVED_SERVICE:
        ok = s10_check_digit(match.group(2)) == int(match.group(3))
        return NumberInfo(clean, NumberFormat.S10, country=match.group(4), check_digit_ok=ok)
    for fmt, pattern in _PATTERNS:
        if pattern.match(clean):
            return NumberInfo(clean, fmt)
    return NumberInfo(clean, NumberFormat.UNKNOWN)


def number_warning(number: str) -> str | None:
    """`identify(number).warning`, without building the NumberInfo for the usual S10 number.

    An import checks every number it reads; a well-formed S10 number (most of them) needs only
    the pattern and the check digit.
    """
    match = _S10.match(number)
    if (
        match is not None
        and number[0] not in _S10_RESERVED_SERVICE
        and s10_check_digit(match.group(2)) == int(match.group(3))
    ):
        return None
    return identify(number).warning
