"""A refund offer as staff type it (`log compose`, `log approve`): options into `Remedies`.

Kept apart from the command line so the console can use it too, and pure: the order's value and
currency come in as arguments. Every error names the option staff typed, not the field it fills
("--partial: '15.001' has more than two decimals").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from messages.remedies import Remedies, RemedyError, parse_amount

# Which option fills which Remedies field, to name the option in the model's own error messages.
_OPTION_OF_FIELD = {
    "full_refund": "--full-refund-amount",
    "partial_refund": "--partial",
    "partial_percent": "--partial",
    "partial refund": "--partial",
    "currency": "--currency",
    "note": "--line",
}


@dataclass(frozen=True)
class OfferOptions:
    """The options as given; None and False mean "not given"."""

    full_refund: bool = False  # the order's value, in its currency
    full_refund_amount: str | None = None  # another amount (implies a full refund)
    reship: bool = False
    partial: str | None = None  # "15.00" (an amount) or "20%" (a percentage)
    wait: bool = False  # keep waiting with the buyer's protection extended
    line: str = ""  # one line staff add to the offer
    currency: str | None = None  # the amounts' currency when it is not the order's

    def given(self) -> bool:
        """True when any remedy option (or the line, or a currency) was given."""
        return bool(
            self.full_refund
            or self.full_refund_amount is not None
            or self.reship
            or self.partial is not None
            or self.wait
            or self.line
            or self.currency
        )

    def remedies_for(self, order_id: str, value: Decimal | None, currency: str) -> Remedies:
        """The remedies these options offer the buyer of order `order_id`, who paid `value` in
        `currency` (None and "" when the import did not say). Raises RemedyError naming the
        option."""
        money = (self.currency or currency).strip().upper()
        full: Decimal | None = None
        if self.full_refund_amount is not None:
            full = parse_amount(self.full_refund_amount, "--full-refund-amount")
        elif self.full_refund:
            if value is None:
                raise RemedyError(
                    f"--full-refund: order {order_id} has no value on record; give "
                    "--full-refund-amount AMOUNT (or import its order_value and currency)"
                )
            full = value
        partial: Decimal | None = None
        percent: Decimal | None = None
        if self.partial is not None:
            text = self.partial.strip()
            if text.endswith("%"):
                percent = parse_amount(text[:-1], "--partial")
            else:
                partial = parse_amount(text, "--partial")
        # Zero is "not offered" to the model, which would then ask for a remedy: say it here.
        full_option = "--full-refund" if self.full_refund_amount is None else "--full-refund-amount"
        part = partial if partial is not None else percent
        for option, amount in ((full_option, full), ("--partial", part)):
            if amount is not None and amount <= 0:
                raise RemedyError(f"{option}: {amount} is not a positive amount")
        if (full is not None or partial is not None) and not money:
            raise RemedyError(
                f"--currency: order {order_id} has no currency on record; give the amounts' "
                "currency, e.g. --currency BRL"
            )
        try:
            return Remedies(
                full_refund=full,
                reship=self.reship,
                partial_refund=partial,
                partial_percent=percent,
                wait_extended=self.wait,
                currency=money if (full is not None or partial is not None) else "",
                note=self.line,
            )
        except RemedyError as exc:
            named = _with_options(str(exc), from_order=self.full_refund_amount is None)
            raise RemedyError(named) from None


def _with_options(message: str, from_order: bool) -> str:
    """The model's problems with each field name replaced by the option that filled it."""
    named = []
    for problem in message.split("; "):
        field, sep, rest = problem.partition(":")
        option = _OPTION_OF_FIELD.get(field)
        if field == "full_refund" and from_order:
            option, rest = "--full-refund", f" the order's value{rest}"
        if field.startswith("choose at least one"):
            problem = "choose at least one of --full-refund, --full-refund-amount, --reship, "
            problem += "--partial, --wait"
        elif sep and option:
            problem = f"{option}:{rest}"
        named.append(problem)
    return "; ".join(named)
