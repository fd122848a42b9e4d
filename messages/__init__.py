"""Turns "send kind K for this order" into a message in the buyer's language and delivers it.

- `messages.kinds`: the one list of kinds and who each is addressed to.
- `messages.context`: the data a template may use (`MessageContext`, `StaffContext`).
- `messages.locale`: which language to write in (`locale_chain`).
- `messages.render`: `render(kind, context, locale, template_dir=None) -> Rendered`.
- `messages.rules`: the content rules every buyer message keeps, enforced by `render`.
- `messages.remedies`: what staff chose to offer in a refund offer (`Remedies`).
- `messages.phrases`: per-language phrases that say "on its way", offer a remedy or speak of
  protection, for checking what a rendered message says.
- `messages.channels`: email, webhook, manual and recording channels.

This package never imports `daemon` or `carriers`.
"""

from messages.context import CUSTOMS_VARIANTS, MessageContext, StaffContext
from messages.locale import locale_chain
from messages.render import (
    IncompleteContext,
    MissingTemplate,
    Rendered,
    choose_locale,
    first_available,
    has_template,
    render,
    template_locale,
)
from messages.rules import ContentRuleViolation

__all__ = [
    "CUSTOMS_VARIANTS",
    "ContentRuleViolation",
    "IncompleteContext",
    "MessageContext",
    "MissingTemplate",
    "Rendered",
    "StaffContext",
    "choose_locale",
    "first_available",
    "has_template",
    "locale_chain",
    "render",
    "template_locale",
]
