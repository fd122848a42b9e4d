"""Which adapter tracks a number: the carrier's own API where we have one, else the aggregator.

Default rules (reference section 6, "Routing hint"):

* UPU S10 numbers issued in Brazil (`…BR`) go to `correios`;
* S10 numbers issued in Russia (`…RU`) and 14-digit Russian domestic numbers go to `russianpost`;
* everything else (China Post `…CN`, YunExpress, Cainiao, 4PX, unknown shapes) goes to the
  aggregator `seventeentrack`, which follows the first mile in China and the last mile abroad.

`Overrides` let an operator say "every parcel to Brazil goes to correios" (by destination country)
or "what the shop calls 'YunExpress' goes to seventeentrack" (by the carrier name imported with the
order). The carrier-name override wins over the country override, which wins over the format rule.
If the chosen adapter is not enabled (switched off or unconfigured), the number goes to the
aggregator instead: a parcel is never left untracked because one carrier API is missing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from carriers.numbers import NumberFormat, identify

AGGREGATOR = "seventeentrack"
CORREIOS = "correios"
RUSSIANPOST = "russianpost"

# Issuing country of an S10 number → the post's own adapter. One table; add a row per new post.
POST_BY_COUNTRY: Mapping[str, str] = {"BR": CORREIOS, "RU": RUSSIANPOST}


@dataclass(frozen=True)
class Overrides:
    """Operator routing choices. Keys are matched case-insensitively; values are adapter names."""

    by_country: Mapping[str, str] = field(default_factory=dict)  # destination ISO alpha-2
    by_carrier_name: Mapping[str, str] = field(default_factory=dict)  # as imported with the order

    def for_country(self, country: str | None) -> str | None:
        if not country:
            return None
        return _lookup(self.by_country, country)

    def for_carrier_name(self, name: str | None) -> str | None:
        if not name:
            return None
        return _lookup(self.by_carrier_name, name)


def _lookup(table: Mapping[str, str], key: str) -> str | None:
    wanted = key.strip().casefold()
    for k, v in table.items():
        if k.strip().casefold() == wanted:
            return v
    return None


def by_format(number: str) -> str:
    """The adapter the number's shape points to, before any override."""
    info = identify(number)
    post = POST_BY_COUNTRY.get(info.country or "")
    if info.format is NumberFormat.S10 and post:
        return post
    if info.format is NumberFormat.RUSSIAN_POST_DOMESTIC:
        return RUSSIANPOST
    return AGGREGATOR


def route(
    number: str,
    country: str | None = None,
    *,
    carrier_name: str | None = None,
    overrides: Overrides | None = None,
    enabled: Collection[str] | None = None,
) -> str:
    """The adapter name for `number` going to destination `country`.

    `enabled` is the set of adapters that are switched on and configured; None means all are.
    """
    overrides = overrides or Overrides()
    choice = (
        overrides.for_carrier_name(carrier_name)
        or overrides.for_country(country)
        or by_format(number)
    )
    if enabled is not None and choice not in enabled:
        return AGGREGATOR
    return choice


def candidates(number: str, country: str | None = None) -> list[str]:
    """Adapters that could plausibly know `number`, most specific first, the aggregator last.

    An S10 number keeps its identity across posts, so besides the issuing post the destination
    country's post can know it once the parcel is handed over (a `…CN` number tracked by Correios).
    """
    info = identify(number)
    found: list[str] = []
    if info.format is NumberFormat.S10:
        for c in (info.country or "", (country or "").upper()):
            post = POST_BY_COUNTRY.get(c)
            if post and post not in found:
                found.append(post)
    elif info.format is NumberFormat.RUSSIAN_POST_DOMESTIC:
        found.append(RUSSIANPOST)
    found.append(AGGREGATOR)
    return found
