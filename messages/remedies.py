"""What staff chose to offer a buyer in a refund offer: the remedies, their amounts, and a line.

A refund offer says only what a person approved. The policy decides that an offer is due; staff
compose it (`parcelwatch log compose` or the options of `log approve`), and the row keeps their
choice as JSON (`Remedies.to_json`) for the send job to render and nothing else. The amounts are
`Decimal`s written as text, so no float ever rounds a refund.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

# A line staff add to the offer: one short paragraph, no links (a link in a refund message is
# what scams look like), no markup.
NOTE_MAX = 300
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_LINK = re.compile(r"(https?://|www\.|\b[\w-]+\.(com|net|org|ru|br|cn|shop|store|link|io)\b)", re.I)
_AMOUNT_MAX = Decimal("1000000")


class RemedyError(ValueError):
    """A composition staff cannot approve; the message says which choice is wrong and why."""


@dataclass(frozen=True)
class Remedies:
    """The options a refund offer puts to the buyer. Each is offered only when chosen.

    `full_refund` and `partial_refund` are amounts in `currency`; a partial refund may be a
    percentage instead (`partial_percent`). `wait_extended`: keep waiting with the buyer's
    protection extended (only for orders whose marketplace has such a protection).
    """

    full_refund: Decimal | None = None
    reship: bool = False
    partial_refund: Decimal | None = None
    partial_percent: Decimal | None = None
    wait_extended: bool = False
    currency: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise RemedyError("; ".join(problems))

    def problems(self) -> list[str]:
        """Everything wrong with this choice, each naming the option."""
        found: list[str] = []
        if not (self.full_refund or self.reship or self.partial_refund or self.partial_percent
                or self.wait_extended):  # fmt: skip
            found.append("choose at least one remedy (full refund, reship, partial refund, wait)")
        for name in ("full_refund", "partial_refund"):
            amount = getattr(self, name)
            if amount is not None and not (Decimal(0) < amount < _AMOUNT_MAX):
                found.append(f"{name}: {amount} is not a positive amount")
            elif amount is not None and amount != amount.quantize(Decimal("0.01")):
                found.append(f"{name}: {amount} has more than two decimals")
        if self.partial_refund is not None and self.partial_percent is not None:
            found.append("partial refund: give an amount or a percentage, not both")
        if self.partial_percent is not None and not (
            Decimal(0) < self.partial_percent < Decimal(100)
        ):
            found.append(f"partial_percent: {self.partial_percent} is not between 0 and 100")
        if (self.full_refund or self.partial_refund) and not _CURRENCY.match(self.currency):
            found.append(f"currency: {self.currency!r} is not a three-letter code (e.g. BRL)")
        if len(self.note) > NOTE_MAX:
            found.append(f"note: {len(self.note)} characters, at most {NOTE_MAX}")
        if any(c in self.note for c in "\r\n\t") or any(ord(c) < 32 for c in self.note):
            found.append("note: one line, without control characters")
        if _LINK.search(self.note):
            found.append("note: no links or web addresses in a refund offer")
        return found

    def offered(self, has_protection: bool = True) -> tuple[str, ...]:
        """The options the buyer is offered, in the order a message lists them. Waiting with
        protection extended is only offered where the order has a protection to extend; a
        template asks the buyer to choose only when this holds more than one."""
        chosen = {
            "full_refund": self.full_refund is not None,
            "reship": self.reship,
            "partial_refund": self.partial_refund is not None or self.partial_percent is not None,
            "wait_extended": self.wait_extended and has_protection,
        }
        return tuple(name for name, on in chosen.items() if on)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "full_refund": _text(self.full_refund),
            "reship": self.reship,
            "partial_refund": _text(self.partial_refund),
            "partial_percent": _text(self.partial_percent),
            "wait_extended": self.wait_extended,
            "currency": self.currency,
            "note": self.note,
        }
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Remedies | None:
        """The remedies stored on a log row; None when staff have not composed the offer yet."""
        if not text:
            return None
        data = json.loads(text)
        return cls(
            full_refund=_amount(data.get("full_refund"), "full_refund"),
            reship=bool(data.get("reship")),
            partial_refund=_amount(data.get("partial_refund"), "partial_refund"),
            partial_percent=_amount(data.get("partial_percent"), "partial_percent"),
            wait_extended=bool(data.get("wait_extended")),
            currency=str(data.get("currency") or ""),
            note=str(data.get("note") or ""),
        )

    def summary(self) -> str:
        """One line for staff: what the buyer will be offered."""
        parts = []
        if self.full_refund is not None:
            parts.append(f"full refund {self.full_refund} {self.currency}")
        if self.reship:
            parts.append("reship")
        if self.partial_refund is not None:
            parts.append(f"partial refund {self.partial_refund} {self.currency}")
        if self.partial_percent is not None:
            parts.append(f"partial refund {self.partial_percent}%")
        if self.wait_extended:
            parts.append("wait with protection extended")
        return ", ".join(parts) + (f"; note: {self.note}" if self.note else "")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _amount(value: Any, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise RemedyError(f"{name}: {value!r} is not a number") from None
    if not amount.is_finite():
        raise RemedyError(f"{name}: {value!r} is not a number")
    return amount


def parse_amount(value: str, name: str) -> Decimal:
    """An amount as staff type it ("12.50", "12,50"), for the command line and the console."""
    amount = _amount(value.replace(",", "."), name)
    if amount is None:
        raise RemedyError(f"{name}: give an amount")
    return amount
