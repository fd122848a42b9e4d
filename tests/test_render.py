"""Every buyer kind in every shipped language renders, keeps the content rules and treats buyer data as
data: the promises the message templates make, checked over the whole template tree."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from markupsafe import escape

from messages.context import CUSTOMS_VARIANTS, MessageContext, StaffContext
from messages.kinds import BUYER_KINDS, STAFF_KINDS, Kind
from messages.locale import is_rtl
from messages.remedies import Remedies
from messages.render import (
    PACKAGE_TEMPLATES,
    IncompleteContext,
    MissingTemplate,
    has_template,
    render,
    template_locale,
)
from messages.rules import ContentRuleViolation, violations

REQUIRED_LOCALES = ["en", "pt-BR", "es", "ru", "de", "fr", "it", "pl", "uk", "he", "ar"]
# Each language carries the customs guidance of the countries that speak it; other variants fall
# back to that language's generic guidance.
REQUIRED_VARIANTS: dict[str, set[str]] = {
    "en": set(CUSTOMS_VARIANTS),
    "pt-BR": {"brazil", "generic"},
    "es": {"eu", "mexico", "chile", "us", "generic"},
    "ru": {"russia", "ukraine", "israel", "generic"},
    "de": {"eu", "generic"},
    "fr": {"eu", "canada", "generic"},
    "it": {"eu", "generic"},
    "pl": {"eu", "generic"},
    "uk": {"ukraine", "generic"},
    "he": {"israel", "generic"},
    "ar": {"saudi", "israel", "generic"},
}
SHIPPED_LOCALES = sorted(
    d.name for d in PACKAGE_TEMPLATES.iterdir() if d.is_dir() and not d.name.startswith("_")
)
BUYER = sorted(BUYER_KINDS)
STAFF = sorted(STAFF_KINDS)
CUSTOMS = [Kind.CUSTOMS_HOLD, Kind.CUSTOMS_PAYMENT_DUE]
TAG = re.compile(r"<[a-zA-Z/!][^>]*>")


def full_context(**changes: object) -> MessageContext:
    ctx = MessageContext(
        buyer_name="Ana Souza",
        order_id="8123456789012345",
        store_name="Loja Bela",
        tracking_numbers=("QQ850419295BR", "LB528961554HK"),
        carrier="Correios",
        country="BR",
        status_text="",
        last_event_description="Objeto encaminhado",
        last_event_location="Curitiba / PR",
        last_event_at=datetime(2026, 11, 20, 15, 30, tzinfo=UTC),
        shipped_at=date(2026, 10, 1),
        expected_by=date(2026, 12, 20),
        next_update_on=date(2026, 12, 5),
        protection_until=date(2027, 1, 10),
        customs_variant="brazil",
        product="Floral dress",
        quantity=2,
        signature="Marta, Loja Bela",
        reply_address="ajuda@lojabela.example",
        tracking_url="https://track.example/QQ850419295BR",
        review_url="https://review.example/8123456789012345",
        pickup_location="Agência Centro, Rua XV de Novembro 100",
        pickup_until=date(2026, 12, 1),
        refund_amount=Decimal("59.90"),
        currency="BRL",
        timezone="America/Sao_Paulo",
        # Every remedy, so the refund offer shows its whole list and the choice question.
        remedies=Remedies(
            full_refund=Decimal("59.90"),
            reship=True,
            partial_percent=Decimal("20"),
            wait_extended=True,
            currency="BRL",
        ),
    )
    return replace(ctx, **changes)  # type: ignore[arg-type]


def minimal_context() -> MessageContext:
    """Only what the kinds require: templates must read well without the optional facts."""
    return MessageContext(
        buyer_name="Jan",
        order_id="42",
        store_name="Shop",
        next_update_on=date(2026, 12, 5),
        protection_until=date(2027, 1, 10),
        pickup_location="Post office, Main Street 1",
        review_url="https://review.example/42",
        remedies=Remedies(reship=True),
    )


def test_english_is_shipped_and_every_required_locale_is_present() -> None:
    for locale in REQUIRED_LOCALES:
        assert locale in SHIPPED_LOCALES


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
@pytest.mark.parametrize("kind", BUYER)
def test_every_shipped_locale_has_every_buyer_kind(locale: str, kind: str) -> None:
    assert has_template(kind, locale)


@pytest.mark.parametrize("kind", STAFF)
def test_every_staff_kind_has_an_english_template(kind: str) -> None:
    assert has_template(kind, "en")


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
@pytest.mark.parametrize("kind", BUYER)
@pytest.mark.parametrize("make", [full_context, minimal_context], ids=["full", "minimal"])
def test_buyer_message_names_buyer_and_order_and_keeps_the_rules(
    locale: str, kind: str, make: object
) -> None:
    ctx = make()  # type: ignore[operator]
    out = render(kind, ctx, locale)
    assert out.locale == locale
    assert ctx.order_id in out.subject
    assert "\n" not in out.subject and "\r" not in out.subject and out.subject.strip()
    for part in (out.text, out.html):
        assert ctx.order_id in part
        assert str(escape(ctx.buyer_name)) in part
    assert not TAG.search(out.text), "text part must not carry HTML"
    assert "None" not in out.text and "None" not in out.html
    assert ".." not in out.text and " ," not in out.text and " ." not in out.text
    assert violations(kind, out.subject, out.text, out.html) == []
    assert f'lang="{locale}"' in out.html
    assert ('dir="rtl"' in out.html) == is_rtl(locale)
    if make is full_context and kind != Kind.REVIEW_REQUEST:
        assert ctx.tracking_numbers[0] in out.text


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
@pytest.mark.parametrize("variant", sorted(CUSTOMS_VARIANTS))
@pytest.mark.parametrize("kind", CUSTOMS)
def test_customs_messages_never_carry_a_link_in_any_variant(
    locale: str, variant: str, kind: str
) -> None:
    # The context offers links (tracking and review URLs); customs templates must not use them.
    out = render(kind, full_context(customs_variant=variant), locale)
    for part in (out.subject, out.text, out.html):
        assert "http" not in part.casefold() and "www." not in part.casefold()


def variants_of(locale: str) -> set[str]:
    return {p.stem for p in (PACKAGE_TEMPLATES / locale / "_customs").glob("*.j2")}


@pytest.mark.parametrize("locale", sorted(REQUIRED_VARIANTS))
def test_each_language_has_the_customs_guidance_of_its_countries(locale: str) -> None:
    assert REQUIRED_VARIANTS[locale] <= variants_of(locale)


@pytest.mark.parametrize("locale", [loc for loc in SHIPPED_LOCALES if "brazil" in variants_of(loc)])
def test_brazil_payment_message_walks_through_minhas_importacoes_and_warns_of_the_scam(
    locale: str,
) -> None:
    out = render(Kind.CUSTOMS_PAYMENT_DUE, full_context(customs_variant="brazil"), locale)
    for words in ("Minhas Importações", "idCorreios", "taxa das blusinhas"):
        assert words in out.text
    assert "<ol>" in out.html  # the steps are a numbered list in HTML too


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
@pytest.mark.parametrize("kind", CUSTOMS)
def test_customs_variants_give_their_own_guidance(locale: str, kind: Kind) -> None:
    assert "generic" in variants_of(locale)
    generic = render(kind, full_context(customs_variant="generic"), locale).text
    for variant in variants_of(locale) - {"generic"}:
        assert render(kind, full_context(customs_variant=variant), locale).text != generic


def test_unknown_or_hostile_customs_variant_falls_back_to_generic() -> None:
    generic = render(Kind.CUSTOMS_HOLD, full_context(customs_variant="generic"), "en").text
    for variant in ("atlantis", "../../etc/passwd", "{{ 7*7 }}"):
        assert (
            render(Kind.CUSTOMS_HOLD, full_context(customs_variant=variant), "en").text == generic
        )


HOSTILE_NAME = "Zoë {{ 7*7 }} {% raw %}<script>alert(1)</script>\r\nBcc: evil@example.com"


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
@pytest.mark.parametrize("kind", BUYER)
def test_hostile_buyer_data_changes_nothing_but_its_own_text(locale: str, kind: str) -> None:
    ctx = full_context(buyer_name=HOSTILE_NAME, product="<img src=x onerror=alert(1)> {{ config }}")
    out = render(kind, ctx, locale)
    baseline = render(kind, full_context(product="P"), locale)
    # Literal in text (line ends normalised to the text part's own), Jinja syntax not evaluated.
    assert HOSTILE_NAME.replace("\r\n", "\n") in out.text
    assert "Zoë {{ 7*7 }} {% raw %}&lt;script&gt;alert(1)&lt;/script&gt;" in out.html
    assert "<script>" not in out.html and "<img" not in out.html
    assert "\r" not in out.subject and "\n" not in out.subject
    # Apart from the hostile values, the message is the one a friendly buyer gets.
    assert (
        out.text.replace(HOSTILE_NAME.replace("\r\n", "\n"), "Ana Souza").replace(
            "<img src=x onerror=alert(1)> {{ config }}", "P"
        )
        == baseline.text
    )


def test_hostile_name_in_subject_is_one_line() -> None:
    override_dir = Path(__file__).parent / "data" / "override_subject"
    out = render(Kind.TRACKING_UPDATE, full_context(buyer_name=HOSTILE_NAME), "en",
                 template_dir=override_dir)  # fmt: skip
    assert out.subject.startswith("For Zoë {{ 7*7 }} {% raw %}<script>alert(1)</script> Bcc:")
    assert "\r" not in out.subject and "\n" not in out.subject


def test_dates_follow_the_buyers_locale_not_the_template_language() -> None:
    ctx = full_context(next_update_on=date(2026, 12, 5))
    us = render(Kind.REASSURANCE, ctx, "en-US")
    gb = render(Kind.REASSURANCE, ctx, "en-GB")
    assert us.locale == gb.locale == "en"
    assert "December 5, 2026" in us.text
    assert "5 December 2026" in gb.text


def test_reassurance_without_a_next_update_date_is_refused() -> None:
    with pytest.raises(IncompleteContext) as err:
        render(Kind.REASSURANCE, full_context(next_update_on=None), "en")
    assert err.value.field == "next_update_on"


def test_reassurance_gives_a_date_and_offers_no_remedy() -> None:
    # Remedies are offered only in a refund offer that staff approved.
    out = render(Kind.REASSURANCE, full_context(), "en").text
    assert "December 5, 2026" in out
    assert "refund" not in out and "new parcel" not in out and "prefer" not in out


def test_refund_offer_apologises_once_and_asks_which_option() -> None:
    out = render(Kind.REFUND_OFFER, full_context(), "en").text
    assert out.lower().count("sorry") == 1
    assert "prefer" in out and "new parcel" in out and "refund" in out


def test_missing_language_raises_missing_template_for_buyer_kinds() -> None:
    with pytest.raises(MissingTemplate) as err:
        render(Kind.TRACKING_UPDATE, full_context(), "nl-BE")
    assert (err.value.kind, err.value.locale) == ("tracking_update", "nl-BE")


def test_region_falls_back_to_its_language_folder() -> None:
    assert template_locale("tracking_update", "en-AU") == "en"


def test_staff_kinds_render_in_english_whatever_the_store_locale() -> None:
    ctx = StaffContext(
        store_name="Loja Bela",
        count=3,
        items=("order 1: refund_offer", "order 2: refund_offer"),
        counts=(("messages sent", 41), ("parcels delivered", 12)),
        command_hint="parcelwatch log list --state awaiting_approval",
        day=date(2026, 11, 23),
        order_id="1",
        tracking_numbers=("XX",),
        carrier="17track",
    )
    for kind in STAFF:
        out = render(kind, ctx, "nl")
        assert out.locale == "en" and out.subject and out.text
    digest = render(Kind.STAFF_DAILY_DIGEST, ctx, "en").text
    assert "messages sent: 41" in digest


def test_marketplace_action_is_not_a_message() -> None:
    with pytest.raises(ValueError):
        render(Kind.EXTEND_PROTECTION, full_context(), "en")


def test_wrong_context_type_is_refused() -> None:
    with pytest.raises(TypeError):
        render(Kind.STAFF_DAILY_DIGEST, full_context(), "en")
    with pytest.raises(TypeError):
        render(Kind.DELIVERED, StaffContext(store_name="S"), "en")


def test_seller_override_wins_per_file_and_can_add_a_language(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "delivered.j2").write_text(
        "{% block subject %}Delivered! {{ order_id }}{% endblock %}"
        "{% block body %}Dear {{ buyer_name }}, order {{ order_id }} arrived.{% endblock %}",
        encoding="utf-8",
    )
    (tmp_path / "nl").mkdir()
    (tmp_path / "nl" / "delivered.j2").write_text(
        "{% block subject %}Bezorgd: {{ order_id }}{% endblock %}"
        "{% block body %}Beste {{ buyer_name }}, bestelling {{ order_id }} is bezorgd.{% endblock %}",
        encoding="utf-8",
    )
    ctx = full_context()
    assert render(Kind.DELIVERED, ctx, "en", template_dir=tmp_path).subject == (
        "Delivered! 8123456789012345"
    )
    # Other kinds still come from the package.
    packaged = render(Kind.REASSURANCE, ctx, "en").text
    assert render(Kind.REASSURANCE, ctx, "en", template_dir=tmp_path).text == packaged
    nl = render(Kind.DELIVERED, ctx, "nl", template_dir=tmp_path)
    assert nl.locale == "nl" and "Beste Ana Souza" in nl.text and 'lang="nl"' in nl.html


def test_override_that_puts_a_link_in_a_customs_message_is_refused(tmp_path: Path) -> None:
    (tmp_path / "en" / "_customs").mkdir(parents=True)
    (tmp_path / "en" / "_customs" / "brazil.j2").write_text(
        "Pay here: https://pay.example/{{ order_id }}", encoding="utf-8"
    )
    with pytest.raises(ContentRuleViolation) as err:
        render(Kind.CUSTOMS_PAYMENT_DUE, full_context(), "en", template_dir=tmp_path)
    assert err.value.violations[0].rule == "link_in_customs_message"


def test_override_that_asks_for_early_confirmation_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pt-BR").mkdir()
    (tmp_path / "pt-BR" / "reassurance.j2").write_text(
        "{% block subject %}Pedido {{ order_id }}{% endblock %}"
        "{% block body %}Olá {{ buyer_name }}, por favor confirme o recebimento.{% endblock %}",
        encoding="utf-8",
    )
    with pytest.raises(ContentRuleViolation):
        render(Kind.REASSURANCE, full_context(), "pt-BR", template_dir=tmp_path)


def test_template_typos_are_errors_not_blanks(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "delivered.j2").write_text(
        "{% block subject %}{{ order_idd }}{% endblock %}{% block body %}x{% endblock %}",
        encoding="utf-8",
    )
    with pytest.raises(Exception, match="order_idd"):
        render(Kind.DELIVERED, full_context(), "en", template_dir=tmp_path)


def test_sandbox_blocks_attribute_escapes(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "delivered.j2").write_text(
        "{% block subject %}{{ order_id.__class__.__mro__ }}{% endblock %}"
        "{% block body %}x{% endblock %}",
        encoding="utf-8",
    )
    with pytest.raises(Exception, match=r"unsafe|__class__|__mro__"):
        render(Kind.DELIVERED, full_context(), "en", template_dir=tmp_path)


@pytest.mark.parametrize(
    ("kind", "text", "rule"),
    [
        (Kind.REASSURANCE, "Please confirm receipt now.", "confirm_receipt_before_delivery"),
        (Kind.EXTENSION, "Пожалуйста, подтвердите получение.", "confirm_receipt_before_delivery"),
        (Kind.REFUND_OFFER, "Please don't open a dispute.", "mentions_dispute"),
        (Kind.REFUND_OFFER, "Não abra disputa, fale conosco.", "mentions_dispute"),
        (Kind.CUSTOMS_HOLD, "Pay at www.pay-taxes.example", "link_in_customs_message"),
    ],
)
def test_rules_catch_each_violation(kind: Kind, text: str, rule: str) -> None:
    assert [v.rule for v in violations(kind, "s", text, "")] == [rule]


def test_confirming_receipt_is_allowed_after_delivery() -> None:
    assert violations(Kind.DELIVERED, "s", "You can confirm receipt now.", "") == []


def test_store_urls_are_links_in_html_but_buyer_text_never_is() -> None:
    ctx = full_context(buyer_name="Eve https://evil.example/x")
    html = render(Kind.REVIEW_REQUEST, ctx, "en").html
    assert '<a href="https://review.example/8123456789012345">' in html
    assert 'href="https://evil.example' not in html


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        full_context(timezone="Mars/Olympus")


@pytest.mark.parametrize(
    ("locale", "words"), [("pt-BR", "Remessa Conforme"), ("en", "Remessa Conforme")]
)
def test_brazil_tracking_update_explains_the_route_and_whether_taxes_were_paid(
    locale: str, words: str
) -> None:
    paid = render(Kind.TRACKING_UPDATE, full_context(import_tax_paid=True), locale).text
    unpaid = render(Kind.TRACKING_UPDATE, full_context(import_tax_paid=False), locale).text
    assert "Curitiba" in paid and words in paid and "taxa das blusinhas" in paid
    assert words not in unpaid and "Aguardando pagamento" in unpaid


def test_a_url_that_extends_another_is_linked_whole() -> None:
    ctx = full_context(
        tracking_url="https://shop.example/t", review_url="https://shop.example/t/review"
    )
    html = render(Kind.REVIEW_REQUEST, ctx, "en").html
    assert '<a href="https://shop.example/t/review">https://shop.example/t/review</a>' in html
    assert html.count("<a ") == 1


def test_template_without_a_subject_block_is_missing(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "delivered.j2").write_text("{% block body %}x{% endblock %}", "utf-8")
    with pytest.raises(MissingTemplate):
        render(Kind.DELIVERED, full_context(), "en", template_dir=tmp_path)


APOLOGY = {
    "en": "sorry",
    "pt-BR": "desculpas",
    "es": "lo sentimos",
    "de": "tut uns leid",
    "fr": "excuses",
    "it": "scusiamo",
    "pl": "przepraszamy",
    "ru": "извинения",
    "uk": "перепрошуємо",
    "he": "מתנצלים",
    "ar": "نعتذر",
}


@pytest.mark.parametrize("locale", sorted(APOLOGY))
@pytest.mark.parametrize("kind", BUYER)
def test_one_apology_at_most_and_exactly_one_with_the_refund_offer(locale: str, kind: str) -> None:
    text = render(kind, full_context(), locale).text.casefold()
    count = text.count(APOLOGY[locale])
    assert count <= 1
    if kind == Kind.REFUND_OFFER:
        assert count == 1


@pytest.mark.parametrize("kind", CUSTOMS)
def test_links_in_carrier_words_are_dropped_from_customs_messages(kind: Kind) -> None:
    ctx = full_context(
        last_event_description="Aguardando pagamento, pague em https://pague-aqui.example/x já",
        status_text="Veja www.falso.example",
    )
    out = render(kind, ctx, "pt-BR")
    assert "Aguardando pagamento, pague em … já" in out.text
    assert "http" not in out.text and "www." not in out.text and "falso" not in out.text


def test_event_dates_are_shown_in_the_buyers_time_zone() -> None:
    late = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    sao_paulo = render(Kind.DELIVERED, full_context(last_event_at=late), "en-GB").text
    tokyo = render(
        Kind.DELIVERED, full_context(last_event_at=late, timezone="Asia/Tokyo"), "en-GB"
    ).text
    assert "delivered on 19 November 2026" in sao_paulo
    assert "delivered on 20 November 2026" in tokyo
