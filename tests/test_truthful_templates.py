"""Every buyer message says only what is true for the parcel's situation: nothing travels that is
not travelling, no remedy is offered that staff did not choose, no protection is spoken of where
there is none. Checked in every shipped language with the phrase tables of `messages.phrases`,
which are first checked to match the templates' real wording."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from babel.numbers import format_currency, format_percent
from markupsafe import escape

from messages.context import MessageContext
from messages.kinds import BUYER_KINDS, Kind, Situation
from messages.locale import babel_locale
from messages.phrases import (
    FULL_REFUND,
    ON_ITS_WAY,
    PARTIAL_REFUND,
    PROTECTION,
    REMEDIES,
    RESHIP,
    found,
)
from messages.remedies import Remedies
from messages.render import PACKAGE_TEMPLATES, IncompleteContext, _format_day, render
from messages.rules import violations
from tests.test_render import APOLOGY

LOCALES = sorted(
    d.name for d in PACKAGE_TEMPLATES.iterdir() if d.is_dir() and not d.name.startswith("_")
)
TABLES = {
    "ON_ITS_WAY": ON_ITS_WAY,
    "FULL_REFUND": FULL_REFUND,
    "PARTIAL_REFUND": PARTIAL_REFUND,
    "RESHIP": RESHIP,
    "REMEDIES": REMEDIES,
    "PROTECTION": PROTECTION,
}
# Situations promised_update is written for: a delivered parcel gets no "we promised to write".
OPEN_SITUATIONS = sorted(s.value for s in Situation if s is not Situation.DELIVERED)
OTHER_BUYER_KINDS = sorted(k.value for k in BUYER_KINDS if k is not Kind.REFUND_OFFER)

# Buyers as they are: accented names, a destination that speaks the language.
BUYERS = {
    "en": ("Zoë Ashworth-Ñúñez", "US"),
    "pt-BR": ("João Conceição", "BR"),
    "es": ("Begoña Muñoz Ibáñez", "ES"),
    "ru": ("Фёдор Семёнов", "RU"),
    "uk": ("Ґанна Їжакевич", "UA"),
    "de": ("Jürgen Größmann", "DE"),
    "fr": ("Hélène Lefèvre", "FR"),
    "it": ("Niccolò Bàrberi", "IT"),
    "pl": ("Łucja Wiśniewska", "PL"),
    "he": ("שירה כהן", "IL"),
    "ar": ("عائشة الحربي", "SA"),
}
# What the carrier last said, in each situation (Correios' own words).
LAST_EVENT = {
    "on_its_way": "Objeto encaminhado",
    "awaiting_customs_payment": "Aguardando pagamento",
    "delivery_failed": "Carteiro não atendido",
    "at_pickup_point": "Objeto aguardando retirada no endereço indicado",
    "never_found": "",
    "returning": "Objeto devolvido ao remetente",
    "delivered": "Objeto entregue ao destinatário",
}
ALL_REMEDIES = Remedies(
    full_refund=Decimal("129.90"),
    reship=True,
    partial_percent=Decimal("20"),
    wait_extended=True,
    currency="BRL",
)
NEXT_UPDATE = date(2026, 12, 5)


def context(locale: str, situation: str = "on_its_way", **changes: object) -> MessageContext:
    name, country = BUYERS[locale]
    ctx = MessageContext(
        buyer_name=name,
        order_id="8123456789012345",
        store_name="Loja Bela",
        tracking_numbers=("QQ850419295BR", "LB528961554HK"),
        carrier="Correios",
        country=country,
        last_event_description=LAST_EVENT[situation],
        last_event_location="Curitiba / PR" if LAST_EVENT[situation] else "",
        last_event_at=datetime(2026, 11, 20, 15, 30, tzinfo=UTC) if LAST_EVENT[situation] else None,
        shipped_at=date(2026, 10, 1),
        expected_by=date(2026, 12, 20),
        next_update_on=NEXT_UPDATE,
        protection_until=date(2027, 1, 10),
        product="Vestido floral",
        quantity=2,
        reply_address="ajuda@lojabela.example",
        tracking_url="https://track.example/QQ850419295BR",
        review_url="https://review.example/8123456789012345",
        pickup_location="Agência Centro, Rua XV de Novembro 100",
        pickup_until=date(2026, 12, 12),
        timezone="America/Sao_Paulo",
        situation=situation,
        remedies=ALL_REMEDIES,
        has_protection=True,
    )
    return replace(ctx, **changes)  # type: ignore[arg-type]


def formatted(day: date, locale: str) -> str:
    """The day as the templates write it: the renderer's own long date in prose."""
    return _format_day(day, "long", locale)


def words(kind: str, ctx: MessageContext, locale: str) -> str:
    """Subject and text of a rendered message, after checking it keeps the content rules."""
    out = render(kind, ctx, locale)
    assert violations(kind, out.subject, out.text, out.html) == []
    return f"{out.subject}\n{out.text}"


# --- the phrase tables match the templates' real wording -----------------------------------------


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_covers_every_shipped_locale(name: str) -> None:
    assert sorted(TABLES[name]) == LOCALES
    for locale, phrases in TABLES[name].items():
        assert phrases, f"{name} has no phrase for {locale}"
        assert all(p == p.casefold() for p in phrases), f"{name}[{locale}] must be lower case"


@pytest.mark.parametrize("locale", LOCALES)
def test_on_its_way_phrases_match_the_reassurance_text(locale: str) -> None:
    text = render(Kind.REASSURANCE, context(locale), locale).text
    assert found(ON_ITS_WAY, text, locale)
    # Brazil's reassurance has its own customs sentence: the phrases cover the other one too.
    elsewhere = render(Kind.REASSURANCE, context(locale, country="PT"), locale).text
    assert found(ON_ITS_WAY, elsewhere, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_remedy_phrases_match_a_refund_offer_with_every_remedy(locale: str) -> None:
    text = render(Kind.REFUND_OFFER, context(locale), locale).text
    for table in (FULL_REFUND, PARTIAL_REFUND, RESHIP, PROTECTION):
        assert found(table, text, locale)
    amount = context(locale, remedies=replace(ALL_REMEDIES, partial_percent=None,
                                              partial_refund=Decimal("30.00")))  # fmt: skip
    assert found(PARTIAL_REFUND, render(Kind.REFUND_OFFER, amount, locale).text, locale)


def test_found_is_case_insensitive_and_falls_back_to_the_language() -> None:
    assert found(ON_ITS_WAY, "Still ON ITS WAY", "en-GB") == ["on its way"]
    assert found(REMEDIES, "Reembolso Total", "pt-BR") == ["reembolso total"]
    with pytest.raises(KeyError):
        found(REMEDIES, "x", "nl")


# --- promised_update -------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("situation", OPEN_SITUATIONS)
def test_promised_update_fits_the_situation_and_names_the_next_date(
    locale: str, situation: str
) -> None:
    ctx = context(locale, situation)
    text = words(Kind.PROMISED_UPDATE, ctx, locale)
    travelling = found(ON_ITS_WAY, text, locale)
    if situation == Situation.ON_ITS_WAY:
        assert travelling
    else:
        assert travelling == [], f"{situation} must not say the parcel travels"
    assert formatted(NEXT_UPDATE, locale) in text
    assert found(REMEDIES, text, locale) == []
    assert ctx.tracking_numbers[0] in text and ctx.buyer_name in text


@pytest.mark.parametrize("locale", LOCALES)
def test_each_situation_has_its_own_promised_update(locale: str) -> None:
    texts = {s: render(Kind.PROMISED_UPDATE, context(locale, s), locale).text
             for s in OPEN_SITUATIONS}  # fmt: skip
    bodies = {s: t.replace(LAST_EVENT[s], "") for s, t in texts.items()}
    assert len(set(bodies.values())) == len(OPEN_SITUATIONS)


@pytest.mark.parametrize("locale", LOCALES)
def test_pickup_variant_names_the_place_and_reads_well_without_it(locale: str) -> None:
    ctx = context(locale, "at_pickup_point")
    assert (
        ctx.pickup_location
        and ctx.pickup_location in render(Kind.PROMISED_UPDATE, ctx, locale).text
    )
    bare = render(Kind.PROMISED_UPDATE, replace(ctx, pickup_location=None, pickup_until=None),
                  locale).text  # fmt: skip
    assert "None" not in bare and " ." not in bare and " ," not in bare
    # No paragraph after the greeting ends in a colon with nothing after it.
    assert not any(para.endswith(":") for para in bare.strip().split("\n\n")[1:])


@pytest.mark.parametrize("situation", ["delivered", "lost_in_space"])
def test_promised_update_is_refused_for_a_situation_it_has_no_variant_for(situation: str) -> None:
    with pytest.raises(IncompleteContext) as err:
        render(Kind.PROMISED_UPDATE, replace(context("en", "delivered"), situation=situation), "en")
    assert err.value.field == "situation"


@pytest.mark.parametrize(
    "kind", [Kind.PROMISED_UPDATE, Kind.RETURNED_TO_SENDER, Kind.TRACKING_NOT_FOUND]
)
def test_kinds_that_promise_a_date_need_it(kind: Kind) -> None:
    with pytest.raises(IncompleteContext) as err:
        render(kind, context("en", next_update_on=None), "en")
    assert err.value.field == "next_update_on"


def test_a_customs_payment_update_carries_no_link_even_in_carrier_words() -> None:
    ctx = context(
        "pt-BR",
        "awaiting_customs_payment",
        last_event_description="Aguardando pagamento: pague em https://pague-aqui.example/x",
    )
    out = render(Kind.PROMISED_UPDATE, ctx, "pt-BR")
    for part in (out.subject, out.text, out.html):
        assert "http" not in part and "pague-aqui" not in part


# --- no remedy outside an approved refund offer ----------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", OTHER_BUYER_KINDS)
def test_no_kind_but_the_refund_offer_offers_a_remedy(locale: str, kind: str) -> None:
    situations = OPEN_SITUATIONS if kind == Kind.PROMISED_UPDATE else ["on_its_way"]
    for situation in situations:
        text = words(kind, context(locale, situation), locale)
        assert found(REMEDIES, text, locale) == [], f"{kind} in {situation}"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", [Kind.RETURNED_TO_SENDER, Kind.TRACKING_NOT_FOUND])
def test_returned_and_not_found_promise_a_word_by_a_date(locale: str, kind: Kind) -> None:
    text = render(kind, context(locale), locale).text
    assert formatted(NEXT_UPDATE, locale) in text


# "A member of our team will write to you with the options by {date}", as returned_to_sender says
# it in each language: a person writes, with the options, by the date, and no option is named.
PERSON_WRITES_BY = {
    "en": "a member of our team will write to you with the options by {date}.",
    "pt-BR": "uma pessoa da nossa equipe vai escrever para você com as opções até {date}.",
    "es": "una persona de nuestro equipo le escribirá con las opciones a más tardar el {date}.",
    "ru": "наш сотрудник напишет вам о вариантах решения не позднее {date}.",
    "uk": "наш працівник напише вам про варіанти рішення не пізніше {date}.",
    "de": "jemand aus unserem team meldet sich bis zum {date} mit den möglichkeiten bei ihnen.",
    "fr": "un membre de notre équipe vous écrira au plus tard le {date} pour vous présenter les "
    "options possibles.",
    "it": "una persona del nostro team le scriverà con le possibili soluzioni entro il {date}.",
    "pl": "osoba z naszego zespołu napisze do państwa z możliwymi rozwiązaniami najpóźniej {date}.",
    "he": "נציג מהצוות שלנו יכתוב לכם עם האפשרויות עד {date}.",
    "ar": "سيراسلكم أحد أعضاء فريقنا بالخيارات المتاحة في موعد أقصاه {date}.",
}


def test_the_person_writes_table_covers_every_shipped_locale() -> None:
    assert sorted(PERSON_WRITES_BY) == LOCALES


@pytest.mark.parametrize("locale", LOCALES)
def test_not_found_says_a_person_writes_with_the_options_by_the_date_as_returned_does(
    locale: str,
) -> None:
    """The not-found notice goes out with a refund offer that waits for a staff member to choose
    the remedies: it says that person writes with the options by `next_update_on`, in the same
    words as the returned notice, and names no remedy (only the approved offer may)."""
    ctx = context(locale, "never_found")
    sentence = PERSON_WRITES_BY[locale].format(date=formatted(NEXT_UPDATE, locale)).casefold()
    not_found = words(Kind.TRACKING_NOT_FOUND, ctx, locale)
    returned = words(Kind.RETURNED_TO_SENDER, context(locale, "returning"), locale)
    assert formatted(NEXT_UPDATE, locale) in not_found
    assert sentence in not_found.casefold()
    assert sentence in returned.casefold()
    assert found(REMEDIES, not_found, locale) == []
    # Another date moves with it: the sentence names the date given, not a fixed one.
    later = date(2027, 2, 14)
    moved = words(Kind.TRACKING_NOT_FOUND, replace(ctx, next_update_on=later), locale)
    assert PERSON_WRITES_BY[locale].format(date=formatted(later, locale)).casefold() in (
        moved.casefold()
    )
    assert formatted(NEXT_UPDATE, locale) not in moved


# --- extension ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("situation", OPEN_SITUATIONS)
def test_extension_says_where_the_parcel_is_nowhere(locale: str, situation: str) -> None:
    text = words(Kind.EXTENSION, context(locale, situation), locale)
    assert found(ON_ITS_WAY, text, locale) == []
    assert found(PROTECTION, text, locale)
    assert formatted(date(2027, 1, 10), locale) in text


@pytest.mark.parametrize("locale", LOCALES)
def test_extension_names_the_next_update_only_when_there_is_one(locale: str) -> None:
    with_date = render(Kind.EXTENSION, context(locale), locale).text
    without = render(Kind.EXTENSION, context(locale, next_update_on=None), locale).text
    assert formatted(NEXT_UPDATE, locale) in with_date
    assert formatted(NEXT_UPDATE, locale) not in without


# --- refund_offer ----------------------------------------------------------------------------------


def _ask_line(text: str) -> str:
    """The line before the options list: the question when there is a choice."""
    lines = [line for line in text.split("\n") if line.strip()]
    first_option = next(i for i, line in enumerate(lines) if line.startswith("- "))
    return lines[first_option - 1]


@pytest.mark.parametrize("locale", LOCALES)
def test_refund_offer_with_only_a_reship_offers_only_that(locale: str) -> None:
    ctx = context(locale, remedies=Remedies(reship=True))
    text = words(Kind.REFUND_OFFER, ctx, locale)
    assert found(RESHIP, text, locale)
    assert found(FULL_REFUND, text, locale) == []
    assert found(PARTIAL_REFUND, text, locale) == []
    assert found(PROTECTION, text, locale) == []
    # One option: proposed, not a question of which.
    choice = render(Kind.REFUND_OFFER, context(locale), locale).text
    assert _ask_line(choice) not in text


@pytest.mark.parametrize("locale", LOCALES)
def test_refund_offer_shows_the_amounts_and_percent_in_the_buyers_format(locale: str) -> None:
    loc = babel_locale(locale)
    text = render(Kind.REFUND_OFFER, context(locale), locale).text
    assert format_currency(Decimal("129.90"), "BRL", locale=loc) in text
    assert format_percent(Decimal("0.2"), locale=loc) in text
    half = context(locale, remedies=Remedies(partial_percent=Decimal("12.5"), reship=True))
    assert (
        format_percent(Decimal("0.125"), locale=loc, decimal_quantization=False)
        in render(Kind.REFUND_OFFER, half, locale).text
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_refund_offer_carries_the_staff_note_as_written(locale: str) -> None:
    note = "Sobre o tamanho: posso trocar por um M, é só dizer <3"
    ctx = context(locale, remedies=replace(ALL_REMEDIES, note=note))
    out = render(Kind.REFUND_OFFER, ctx, locale)
    assert note in out.text
    assert str(escape(note)) in out.html


@pytest.mark.parametrize("locale", LOCALES)
def test_refund_offer_apologises_once_with_one_option_too(locale: str) -> None:
    text = render(Kind.REFUND_OFFER, context(locale, remedies=Remedies(reship=True)), locale).text
    assert text.casefold().count(APOLOGY[locale]) == 1


def test_refund_offer_without_remedies_is_refused() -> None:
    with pytest.raises(IncompleteContext) as err:
        render(Kind.REFUND_OFFER, context("en", remedies=None), "en")
    assert err.value.field == "remedies"


# --- protection only where there is one --------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", sorted(k.value for k in BUYER_KINDS if k is not Kind.EXTENSION))
def test_without_a_protection_no_message_speaks_of_one(locale: str, kind: str) -> None:
    situations = OPEN_SITUATIONS if kind == Kind.PROMISED_UPDATE else ["on_its_way"]
    for situation in situations:
        text = words(kind, context(locale, situation, has_protection=False), locale)
        assert found(PROTECTION, text, locale) == [], f"{kind} in {situation}"


def test_an_extension_without_a_protection_is_refused() -> None:
    with pytest.raises(IncompleteContext) as err:
        render(Kind.EXTENSION, context("en", has_protection=False), "en")
    assert err.value.field == "has_protection"


def test_an_offer_of_waiting_alone_is_refused_where_there_is_no_protection() -> None:
    ctx = context("en", remedies=Remedies(wait_extended=True), has_protection=False)
    with pytest.raises(IncompleteContext) as err:
        render(Kind.REFUND_OFFER, ctx, "en")
    assert err.value.field == "remedies"
    # With a protection, the same offer is one option, proposed.
    text = render(Kind.REFUND_OFFER, replace(ctx, has_protection=True), "en").text
    assert found(PROTECTION, text, "en") and found(REMEDIES, text, "en") == []
