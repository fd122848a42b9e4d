"""Content rules every buyer message must keep, whoever wrote the template (us or a seller's override).

These are the marketplace's and the product's "never" list:
- never ask the buyer to confirm receipt before the parcel is delivered (AliExpress lists "inducing
  early receipt confirmation" as a violation, and buyers are told it is a scam);
- never discourage a dispute: our templates do not mention disputes at all, so the check bans the
  word in every language we write rather than trying to recognise every discouraging sentence;
- never a link in a customs message ("taxa das blusinhas" payment-link scams in Brazil): buyers are
  pointed to the official app or site by name only.

`render()` applies `violations()` to everything it produces and refuses to return a message that
breaks a rule, so an override cannot slip one past.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from messages.kinds import Kind

# Phrases that ask for a receipt confirmation, per language, lower case. Matched case-insensitively
# anywhere in the subject and text.
CONFIRM_RECEIPT_PHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        "confirm receipt",
        "confirm the receipt",
        "confirm delivery",
        "confirm the delivery",
        "confirm you received",
        "confirm that you received",
        "confirm you have received",
        "mark it as received",
        "mark as received",
        "confirm order received",
    ),
    "pt": (
        "confirmar recebimento",
        "confirmar o recebimento",
        "confirme o recebimento",
        "confirme recebimento",
        "confirmação de recebimento",
        "confirmar a entrega",
        "confirme a entrega",
        "confirmar que recebeu",
        "confirme que recebeu",
    ),
    "ru": (
        "подтвердите получение",
        "подтвердить получение",
        "подтверждение получения",
        "подтвердите доставку",
        "подтвердить доставку",
    ),
    "es": (
        "confirmar la recepción",
        "confirme la recepción",
        "confirmar recepción",
        "confirmación de recepción",
        "confirmar la entrega",
        "confirme la entrega",
        "confirme que recibió",
        "confirmar que recibió",
        "confirmar el recibo",
    ),
    "fr": (
        "confirmer la réception",
        "confirmez la réception",
        "confirmation de réception",
        "confirmer la livraison",
        "confirmez la livraison",
        "confirmer avoir reçu",
        "confirmez avoir reçu",
    ),
    "de": (
        "erhalt bestätigen",
        "erhalt zu bestätigen",
        "bestätigen sie den erhalt",
        "empfang bestätigen",
        "empfang zu bestätigen",
        "bestätigen sie den empfang",
        "lieferung bestätigen",
        "bestätigen sie die lieferung",
    ),
    "it": (
        "confermare la ricezione",
        "confermi la ricezione",
        "conferma di ricezione",
        "confermare il ricevimento",
        "confermi il ricevimento",
        "confermare la consegna",
        "confermi la consegna",
    ),
    "pl": (
        "potwierdź odbiór",
        "potwierdzić odbiór",
        "potwierdzenie odbioru",
        "potwierdzić otrzymanie",
        "potwierdzenie otrzymania",
        "potwierdzić dostawę",
        "prosimy o potwierdzenie",
    ),
    "uk": (
        "підтвердіть отримання",
        "підтвердити отримання",
        "підтвердження отримання",
    ),
    "he": ("אשרו קבלה", "לאשר קבלה", "אישור קבלה", "אשרו את קבלת", "לאשר את קבלת"),
    "ar": ("تأكيد الاستلام", "أكد الاستلام", "أكدوا الاستلام", "تأكيد استلام"),
}

# Kinds sent only after the carrier reports delivery: asking to confirm receipt is fine there.
AFTER_DELIVERY = frozenset({Kind.DELIVERED, Kind.REVIEW_REQUEST})

# Words for a dispute / case / claim against the seller, per language. Buyer templates never use
# them, so none can discourage one.
DISPUTE_WORDS: dict[str, str] = {
    "en": r"\bdisput(?:e|es|ed|ing)\b",
    "pt": r"\bdisputas?\b|\babrir (?:uma )?reclamação\b",
    "es": r"\bdisputas?\b|\babrir (?:una )?reclamación\b",
    "it": r"\bdisput[ae]\b|\bcontestazion[ei]\b",
    "ru": r"\bспор(?:а|ы|у|ом|е|ов)?\b|\bдиспут",
    "uk": r"\bспор(?:у|и|ом|і)?\b|\bсуперечк|\bдиспут",
    "fr": r"\blitiges?\b",
    "de": r"\bstreitf[aä]ll|\bdisput\b|\bkäuferschutzfall\b",
    "pl": r"\bsp[oó]r(?:u|y|em|ze)?\b|\bdyskusj[aię] z platform",
    "he": r"מחלוקת|סכסוך",
    "ar": r"نزاع",
}

LINK = re.compile(r"https?://|\bwww\.|\bhttps?:|\S+\.(?:com|br|net|org|ru)/\S*", re.IGNORECASE)
CUSTOMS_KINDS = frozenset({Kind.CUSTOMS_HOLD, Kind.CUSTOMS_PAYMENT_DUE})
_WHOLE_LINK = re.compile(r"(?:https?:/*|www\.)\S*|\S+\.(?:com|br|net|org|ru)/\S*", re.IGNORECASE)


def strip_links(text: str) -> str:
    """The text with every link replaced by "…": carrier or buyer words quoted in a customs message
    must not smuggle a link into it."""
    return _WHOLE_LINK.sub("…", text)


_CONFIRM = [
    (lang, phrase) for lang, phrases in CONFIRM_RECEIPT_PHRASES.items() for phrase in phrases
]
_DISPUTE = [(lang, re.compile(rx, re.IGNORECASE)) for lang, rx in DISPUTE_WORDS.items()]


@dataclass(frozen=True)
class Violation:
    """One broken rule: which rule and the offending words."""

    rule: str
    detail: str


def violations(kind: str, subject: str, text: str, html: str) -> list[Violation]:
    """Every content rule the rendered message breaks (empty when it is fine)."""
    kind = Kind(kind)
    found: list[Violation] = []
    words = f"{subject}\n{text}".casefold()
    if kind not in AFTER_DELIVERY:
        hit = next(((lang, p) for lang, p in _CONFIRM if p in words), None)
        if hit:
            found.append(Violation("confirm_receipt_before_delivery", f"{hit[0]}: {hit[1]!r}"))
    for lang, pattern in _DISPUTE:
        match = pattern.search(words)
        if match:
            found.append(Violation("mentions_dispute", f"{lang}: {match.group(0)!r}"))
            break
    if kind in CUSTOMS_KINDS:
        for part, content in (("subject", subject), ("text", text), ("html", html)):
            match = LINK.search(content)
            if match:
                found.append(Violation("link_in_customs_message", f"{part}: {match.group(0)!r}"))
                break
    if "\r" in subject or "\n" in subject:
        found.append(Violation("line_break_in_subject", repr(subject)))
    return found


class ContentRuleViolation(ValueError):
    """A rendered message breaks a content rule; it must not be sent (hold it for staff)."""

    def __init__(self, kind: str, locale: str, found: list[Violation]) -> None:
        detail = "; ".join(f"{v.rule} ({v.detail})" for v in found)
        super().__init__(f"{kind!r} in {locale!r} breaks content rules: {detail}")
        self.kind = kind
        self.locale = locale
        self.violations = tuple(found)
