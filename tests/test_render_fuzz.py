"""Whatever a buyer's name or product holds, the message is the same message with that text in
it: literal in the text part, escaped in the HTML part, never evaluated, never markup."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from messages.kinds import Kind
from messages.render import render
from messages.rules import ContentRuleViolation
from tests.test_render import full_context

# Any printable text on one line (line breaks are covered by the CRLF tests in test_render).
one_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30
)
NAME, PRODUCT = "NAMEPLACEHOLDER", "PRODUCTPLACEHOLDER"


@settings(max_examples=80, deadline=None)
@given(
    name=one_line,
    product=one_line,
    locale=st.sampled_from(["en", "pt-BR", "ru", "de", "he", "ar"]),
    kind=st.sampled_from([Kind.REFUND_OFFER, Kind.CUSTOMS_PAYMENT_DUE, Kind.REVIEW_REQUEST]),
)
def test_buyer_text_is_only_ever_its_own_text(
    name: str, product: str, locale: str, kind: Kind
) -> None:
    assume(name.strip() == name and product.strip() == product)
    assume(not any(w in (name + product).lower() for w in ("http", "www", "placeholder", "/")))
    base = full_context()
    try:
        out = render(kind, replace(base, buyer_name=name, product=product), locale)
    except ContentRuleViolation:
        return  # data that spells a forbidden phrase is held for staff, never sent
    shape = render(kind, replace(base, buyer_name=NAME, product=PRODUCT), locale)
    assert out.text == shape.text.replace(NAME, name).replace(PRODUCT, product)
    assert out.html == shape.html.replace(NAME, str(escape(name))).replace(
        PRODUCT, str(escape(product))
    )
    assert "\n" not in out.subject
