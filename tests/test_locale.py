"""Choosing the buyer's language: buyer, then country, then store, then English, each by language too."""

from __future__ import annotations

import pytest

from messages.locale import country_locale, is_rtl, locale_chain, normalise
from messages.render import MissingTemplate, choose_locale, first_available, template_locale


def test_brazilian_buyer_chain() -> None:
    assert locale_chain("pt-BR", "BR", "en") == ["pt-BR", "pt", "en"]


def test_no_buyer_locale_uses_the_country_then_the_store() -> None:
    assert locale_chain(None, "DE", "fr") == ["de", "fr", "en"]
    assert locale_chain("", "UA", "en") == ["uk", "en"]  # Ukraine never defaults to Russian


def test_unlisted_country_takes_its_official_language_from_cldr() -> None:
    assert country_locale("NL") == "nl"
    assert country_locale("") is None
    assert country_locale("ZZ") is None


@pytest.mark.parametrize(("raw", "tag"), [("pt_br", "pt-BR"), ("PT-BR", "pt-BR"), ("en", "en"),
                                          ("zh_hans_cn", "zh-Hans-CN")])  # fmt: skip
def test_tags_are_normalised(raw: str, tag: str) -> None:
    assert normalise(raw) == tag


def test_chain_is_deduplicated() -> None:
    assert locale_chain("en-GB", "GB", "en") == ["en-GB", "en"]


def test_rtl_languages() -> None:
    assert is_rtl("he") and is_rtl("ar") and not is_rtl("uk") and not is_rtl("pt-BR")


def test_template_locale_tries_as_written_then_language() -> None:
    assert template_locale("delivered", "en-CA") == "en"
    with pytest.raises(MissingTemplate):
        template_locale("delivered", "nl-NL")


def test_fallback_through_the_chain_is_the_callers_choice() -> None:
    chain = locale_chain("nl-BE", "BE", "en")
    with pytest.raises(MissingTemplate):
        template_locale("delivered", chain[0])
    assert first_available("delivered", chain) == "en"
    with pytest.raises(MissingTemplate) as err:
        first_available("delivered", ["nl-BE", "nl"])
    assert err.value.locale == "nl-BE"


def test_messages_never_imports_daemon_or_carriers() -> None:
    import re
    from pathlib import Path

    import messages

    root = Path(messages.__file__).parent
    pattern = re.compile(r"^\s*(from|import)\s+(daemon|carriers)\b", re.MULTILINE)
    offenders = [p.name for p in root.rglob("*.py") if pattern.search(p.read_text("utf-8"))]
    assert offenders == []


def test_choose_locale_keeps_the_region_for_dates() -> None:
    assert choose_locale("reassurance", "en-GB", "GB", "en") == "en-GB"
    assert choose_locale("reassurance", None, "BR", "en") == "pt-BR"
    assert choose_locale("reassurance", None, None, None) == "en"


def test_choose_locale_holds_by_default_and_falls_back_when_asked() -> None:
    with pytest.raises(MissingTemplate) as err:
        choose_locale("reassurance", "nl-BE", "BE", "de")
    assert (err.value.kind, err.value.locale) == ("reassurance", "nl-BE")
    assert choose_locale("reassurance", "nl-BE", "BE", "de", fallback=True) == "de"
