"""Which language a buyer is written to: the buyer's own, then the country's, then the store's, then English.

Each preference is tried as written and then by its language alone (`pt-BR`, then `pt`). The chain is
only a list of candidates; whether a template exists in one of them is the renderer's question
(`messages.render.template_locale`), so a caller can hold a message for staff when the buyer's
language is missing instead of silently writing in another one.
"""

from __future__ import annotations

from functools import cache

from babel import Locale, UnknownLocaleError
from babel.core import get_global

FALLBACK_LOCALE = "en"

# The language buyers expect per destination (marketplace-rules §6). Countries not listed here take
# the first official language CLDR gives for them.
COUNTRY_LOCALES: dict[str, str] = {
    "BR": "pt-BR",
    "PT": "pt-PT",
    "RU": "ru",
    "ES": "es-ES",
    "MX": "es-MX",
    "CL": "es-CL",
    "FR": "fr",
    "DE": "de",
    "AT": "de-AT",
    "IT": "it",
    "PL": "pl",
    "IL": "he",
    "UA": "uk",  # never Russian by default
    "SA": "ar",
    "US": "en-US",
    "GB": "en-GB",
    "AU": "en-AU",
    "CA": "en-CA",
}


def normalise(tag: str) -> str:
    """`pt_br`, `PT-BR` and `pt-BR` all become `pt-BR`; script subtags keep their title case."""
    parts = tag.strip().replace("_", "-").split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif part:
            out.append(part.upper() if len(part) <= 3 else part)
    return "-".join(p for p in out if p)


def language(tag: str) -> str:
    """The language subtag alone: `pt-BR` → `pt`."""
    return normalise(tag).split("-")[0]


def country_locale(country: str) -> str | None:
    """The language buyers in a country expect, or None for an unknown or empty code."""
    code = country.strip().upper()
    if not code:
        return None
    if code in COUNTRY_LOCALES:
        return COUNTRY_LOCALES[code]
    languages: dict[str, dict[str, object]] = get_global("territory_languages").get(code, {})
    official = [
        lang for lang, info in languages.items() if info.get("official_status") == "official"
    ]
    return normalise(official[0]) if official else None


def preferences(
    buyer_locale: str | None, country: str | None, store_locale: str | None
) -> list[str]:
    """The preferred locales in order, as written, without the by-language fallbacks or English."""
    wanted = [buyer_locale, country_locale(country or ""), store_locale]
    return [normalise(tag) for tag in wanted if tag and tag.strip()]


def locale_chain(
    buyer_locale: str | None, country: str | None, store_locale: str | None
) -> list[str]:
    """Every locale worth trying, best first, each as written then by language, ending in English.

    `locale_chain("pt-BR", "BR", "en")` is `["pt-BR", "pt", "en"]`.
    """
    chain: list[str] = []
    for tag in [*preferences(buyer_locale, country, store_locale), FALLBACK_LOCALE]:
        for candidate in (tag, language(tag)):
            if candidate not in chain:
                chain.append(candidate)
    return chain


@cache
def babel_locale(tag: str) -> Locale:
    """The Babel locale for a tag, or for its language when Babel does not know the region."""
    for candidate in (normalise(tag), language(tag), FALLBACK_LOCALE):
        try:
            return Locale.parse(candidate.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            continue
    raise AssertionError("Babel always knows English")  # pragma: no cover


def is_rtl(tag: str) -> bool:
    """True for languages written right to left (Hebrew, Arabic, ...)."""
    return babel_locale(tag).character_order == "right-to-left"
