"""The phrases that make a buyer message say something, per template locale: the one place where
tests (and staff tools) look up whether a message says the parcel is travelling, offers a remedy or
speaks of buyer protection.

Each table maps a template locale (a folder of `messages/templates`) to lower-case phrases, matched
case-insensitively anywhere in a text by `found`. They follow the wording of the shipped templates
(and a few near forms of it), so the tests can check both ways: a message that must not say a thing
contains none of its phrases, and the message that says it contains at least one.

- ON_ITS_WAY: the parcel is still travelling to the buyer, or delays at customs are normal. Untrue
  while it waits for the buyer at a pickup point, for a customs payment, after a failed delivery or
  on its way back to us.
- FULL_REFUND, PARTIAL_REFUND, RESHIP (together REMEDIES): a remedy on offer. Only a refund offer
  that staff approved may carry one.
- PROTECTION: the marketplace's buyer protection. Only for orders that have one.
"""

from __future__ import annotations

from messages.locale import language, normalise

Table = dict[str, tuple[str, ...]]

ON_ITS_WAY: Table = {
    "en": ("on its way", "on the way", "in transit", "customs delays", "extra days at customs"),
    "pt-BR": (
        "a caminho",
        "em trânsito",
        "atrasos na fiscalização aduaneira",
        "dias a mais na alfândega",
    ),
    "es": ("en camino", "en tránsito", "días más en la aduana"),
    "ru": ("в пути", "задерживаются на несколько дней на таможне"),
    "uk": ("в дорозі", "у дорозі", "затримуються на кілька днів на митниці"),
    "de": ("unterwegs", "länger beim zoll"),
    "fr": ("en route", "en chemin", "en transit", "jours de plus en douane"),
    "it": ("in viaggio", "in transito", "giorno in più in dogana"),
    "pl": ("w drodze", "w tranzycie", "dni dłużej w urzędzie celnym"),
    # Not "בדרך" alone: "בדרך כלל" means "usually".
    "he": ("עדיין בדרך", "בדרך אליכם", "ימים נוספים במכס"),
    # Not "في طريق العودة" (on the way back), which the returned message may say.
    "ar": ("في الطريق", "أيام إضافية في الجمارك"),
}

FULL_REFUND: Table = {
    "en": ("full refund", "refund you in full", "refund in full"),
    "pt-BR": ("reembolso total", "reembolso integral"),
    "es": ("reembolso total", "reembolso completo", "importe total"),
    "ru": ("полный возврат", "полного возврата", "полностью вернём"),
    "uk": ("повне повернення", "повного повернення", "повністю повернемо"),
    "de": ("vollständige rückerstattung", "volle rückerstattung", "vollen betrag"),
    "fr": ("remboursement complet", "remboursement intégral", "rembourserons intégralement"),
    "it": ("rimborso completo", "rimborso totale", "rimborseremo per intero"),
    "pl": ("pełny zwrot", "pełnego zwrotu", "pełną kwotę"),
    "he": ("החזר כספי מלא", "מלוא הסכום"),
    "ar": ("المبلغ كامل",),
}

PARTIAL_REFUND: Table = {
    "en": ("partial refund",),
    "pt-BR": ("reembolso parcial",),
    "es": ("reembolso parcial",),
    "ru": ("частичный возврат", "частичным возвратом", "частичного возврата"),
    "uk": ("часткове повернення", "частковим поверненням", "часткового повернення"),
    "de": ("teilrückerstattung", "teilerstattung"),
    "fr": ("remboursement partiel",),
    "it": ("rimborso parziale",),
    "pl": ("częściowy zwrot", "częściowym zwrotem", "częściowego zwrotu"),
    "he": ("החזר כספי חלקי",),
    "ar": ("استرداد جزء من المبلغ", "استرداد جزئي"),
}

RESHIP: Table = {
    "en": ("new parcel", "send a new one", "reship"),
    "pt-BR": ("novo envio", "nova encomenda", "enviaremos uma nova", "reenvio"),
    "es": ("nuevo envío", "nuevo paquete", "uno nuevo"),
    "ru": ("повторную отправку", "повторная отправка", "повторной отправки", "отправим новую"),
    "uk": ("повторне відправлення", "повторного відправлення", "надішлемо нову"),
    "de": ("neues paket", "neuversand"),
    "fr": ("nouvel envoi", "nouveau colis", "réexpédition"),
    "it": ("nuova spedizione", "nuovo pacco"),
    "pl": ("ponowną wysyłkę", "ponowna wysyłka", "ponownej wysyłki", "wyślemy nową"),
    "he": ("משלוח חדש", "חבילה חדשה"),
    "ar": ("شحنة جديدة", "إعادة الشحن"),
}

REMEDIES: Table = {
    locale: FULL_REFUND[locale] + PARTIAL_REFUND[locale] + RESHIP[locale] for locale in FULL_REFUND
}

PROTECTION: Table = {
    "en": ("protection",),
    "pt-BR": ("proteção",),
    "es": ("protección",),
    "ru": ("защит",),
    "uk": ("захист",),
    "de": ("käuferschutz",),
    "fr": ("protection",),
    "it": ("protezione",),
    "pl": ("ochron",),
    "he": ("הגנת",),
    "ar": ("حماية",),
}


def phrases(table: Table, locale: str) -> tuple[str, ...]:
    """The table's phrases for a locale, as written (`pt-BR`) or by language (`en-GB` → `en`).
    Raises KeyError for a locale the table does not cover, so a check never passes by default."""
    for candidate in (normalise(locale), language(locale)):
        if candidate in table:
            return table[candidate]
    raise KeyError(f"no phrases for locale {locale!r}")


def found(table: Table, text: str, locale: str) -> list[str]:
    """The table's phrases for `locale` that occur in `text`, case-insensitively."""
    words = text.casefold()
    return [phrase for phrase in phrases(table, locale) if phrase.casefold() in words]


__all__ = [
    "FULL_REFUND",
    "ON_ITS_WAY",
    "PARTIAL_REFUND",
    "PROTECTION",
    "REMEDIES",
    "RESHIP",
    "Table",
    "found",
    "phrases",
]
