"""ISO 3166-1 alpha-2 country codes, taken from Babel's CLDR data rather than a list of our own."""

from __future__ import annotations

from functools import cache

from babel import Locale

# CLDR lists a few two-letter regions that are not countries a parcel can be addressed to.
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "ZZ", "QO", "XA", "XB"})


@cache
def country_codes() -> frozenset[str]:
    codes = (str(code) for code in Locale("en").territories)
    return frozenset(
        code for code in codes if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    )


def is_country_code(code: str) -> bool:
    """True for an upper-case ISO 3166-1 alpha-2 code such as `BR`."""
    return code in country_codes()
