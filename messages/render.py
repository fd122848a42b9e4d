"""Render one message kind for one order in one language: subject, plain text and HTML.

Layout of `messages/templates/` (a seller's `template_dir` mirrors it and wins file by file):

    _layout.html.j2            the HTML frame every message is poured into (lang, dir="rtl")
    <locale>/<kind>.j2         one file per kind: {% block subject %} and {% block body %};
                               an optional {% block html %} replaces the HTML made from the body
    <locale>/_signature.j2     the closing lines, included by every kind of that locale
    <locale>/_customs/<variant>.j2   country guidance for the two customs kinds

A kind written per buyer situation (`promised_update`) keeps every variant in its one file, as
`{% if situation == "..." %}` branches; `SITUATION_VARIANTS` says which situations it has, and any
other is refused (IncompleteContext) rather than rendered as the wrong variant.

The body is written once, as plain paragraphs, and rendered twice: without escaping for the text part
and with autoescaping for the HTML part, where blank-line paragraphs become <p>, lines starting with
"- " become a list and "1. " a numbered list. So the two parts can never say different things.

Templates run in Jinja's sandbox with StrictUndefined: a typo in a template is an error, not a blank,
and template data (a buyer's name holding "{{ 7*7 }}") is only ever data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date
from babel.lists import format_list
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, Template, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from messages.context import MessageContext, StaffContext
from messages.kinds import BUYER_KINDS, STAFF_KINDS, Kind, Situation
from messages.locale import (
    FALLBACK_LOCALE,
    babel_locale,
    is_rtl,
    language,
    locale_chain,
    normalise,
    preferences,
)
from messages.rules import CUSTOMS_KINDS, ContentRuleViolation, strip_links, violations

PACKAGE_TEMPLATES = Path(__file__).parent / "templates"

STAFF_LOCALE = "en"
"""Staff messages are written in English; a staff kind missing in the store's locale uses these."""

# Fields a kind cannot be written without; the rest are optional and templates check for them.
# A message that says "we will write again on" needs the date; an extension notice is only true
# for an order with a protection to extend; a refund offer says only what staff chose.
REQUIRED_FIELDS: dict[Kind, tuple[str, ...]] = {
    Kind.REASSURANCE: ("next_update_on",),
    Kind.PROMISED_UPDATE: ("next_update_on",),
    Kind.RETURNED_TO_SENDER: ("next_update_on",),
    Kind.TRACKING_NOT_FOUND: ("next_update_on",),
    Kind.EXTENSION: ("protection_until", "has_protection"),
    Kind.REFUND_OFFER: ("remedies",),
    Kind.READY_FOR_PICKUP: ("pickup_location",),
    Kind.PICKUP_REMINDER: ("pickup_location",),
    Kind.REVIEW_REQUEST: ("review_url",),
}

# Kinds written per situation, and the situations they have a variant for. Any other situation is
# refused rather than rendered as some other variant (a delivered parcel is not "on its way").
SITUATION_VARIANTS: dict[Kind, frozenset[Situation]] = {
    Kind.PROMISED_UPDATE: frozenset(Situation) - {Situation.DELIVERED},
}


class MissingTemplate(LookupError):
    """No template for this kind in this language (as written or by language).

    The caller holds the message for staff, or, when configured to, tries the next locale of
    `messages.locale.locale_chain`.
    """

    def __init__(self, kind: str, locale: str) -> None:
        super().__init__(f"no {kind!r} template for locale {locale!r}")
        self.kind = kind
        self.locale = locale


class IncompleteContext(ValueError):
    """The context lacks a field this kind must state (e.g. the next update date), or holds one
    the kind cannot truthfully be written with (`detail` says why)."""

    def __init__(self, kind: str, field: str, detail: str = "") -> None:
        super().__init__(
            f"{kind!r} needs {field!r} in its context" + (f": {detail}" if detail else "")
        )
        self.kind = kind
        self.field = field
        self.detail = detail


def check_context(kind: Kind, context: MessageContext) -> None:
    """Raise IncompleteContext when `context` lacks what `kind` must say, or when what it holds
    would make the message untrue: a refund offer with nothing this order can be offered, a
    per-situation kind in a situation it has no variant for."""
    for field in REQUIRED_FIELDS.get(kind, ()):
        # False counts as missing: `has_protection` is required where protection is the subject.
        if getattr(context, field) in (None, "", False):
            raise IncompleteContext(kind.value, field)
    remedies = context.remedies
    if kind is Kind.REFUND_OFFER and remedies and not remedies.offered(context.has_protection):
        raise IncompleteContext(
            kind.value,
            "remedies",
            "waiting with protection extended is the only option chosen, and this order has no "
            "protection to extend",
        )
    variants = SITUATION_VARIANTS.get(kind)
    if variants is not None and context.situation not in variants:
        raise IncompleteContext(kind.value, "situation", f"no variant for {context.situation!r}")


@dataclass(frozen=True)
class Rendered:
    """A message ready for a channel. `locale` is the language the text is written in."""

    subject: str
    text: str
    html: str
    locale: str


def _roots(template_dir: Path | None) -> list[Path]:
    return [template_dir, PACKAGE_TEMPLATES] if template_dir is not None else [PACKAGE_TEMPLATES]


def has_template(kind: str, locale: str, *, template_dir: Path | None = None) -> bool:
    """True when `<locale>/<kind>.j2` exists in the seller's folder or the package."""
    # os.path, not pathlib: building Path objects costs more than the stat itself
    name = os.path.join(normalise(locale), f"{kind}.j2")
    return any(os.path.isfile(os.path.join(root, name)) for root in _roots(template_dir))


def template_locale(kind: str, locale: str, *, template_dir: Path | None = None) -> str:
    """The template folder that serves `locale` for `kind`: as written, then by language.

    Raises MissingTemplate when neither exists.
    """
    for candidate in dict.fromkeys((normalise(locale), language(locale))):
        if has_template(kind, candidate, template_dir=template_dir):
            return candidate
    raise MissingTemplate(kind, locale)


def first_available(kind: str, chain: list[str], *, template_dir: Path | None = None) -> str:
    """The first locale of a chain (see `locale_chain`) that has the kind: for callers configured to
    fall back rather than hold the message. Raises MissingTemplate naming the chain's head."""
    for candidate in chain:
        if has_template(kind, candidate, template_dir=template_dir):
            return candidate
    raise MissingTemplate(kind, chain[0] if chain else FALLBACK_LOCALE)


def choose_locale(
    kind: str,
    buyer_locale: str | None,
    country: str | None,
    store_locale: str | None,
    *,
    template_dir: Path | str | None = None,
    fallback: bool = False,
) -> str:
    """The locale to render `kind` in for this buyer.

    The chosen language is the first given of: the buyer's locale, the country's, the store's,
    English. Without `fallback`, it must have the kind (as written or by language) or
    MissingTemplate(kind, that locale) is raised, so the caller holds the message for staff rather
    than write in a language the buyer did not choose. With `fallback`, the rest of
    `locale_chain` is tried in order. The returned locale keeps its region (`en-GB`) so dates
    follow it; pass it to `render`.
    """
    root = Path(template_dir) if template_dir is not None else None
    chosen = (preferences(buyer_locale, country, store_locale) or [FALLBACK_LOCALE])[0]
    candidates = locale_chain(buyer_locale, country, store_locale) if fallback else [chosen]
    for candidate in candidates:
        try:
            template_locale(kind, candidate, template_dir=root)
        except MissingTemplate:
            continue
        return candidate
    raise MissingTemplate(kind, chosen)


# --- formatting helpers: context filters that read the render's locale and time zone -------------

# CLDR's long date ends in an abbreviation in some languages ("5 декабря 2026 г."), which doubles
# the full stop at the end of a sentence; in prose the word in full reads better anyway.
_LONG_DATE_IN_PROSE = {"ru": "d MMMM y 'года'", "uk": "d MMMM y 'року'"}

# Template variables the renderer adds; the filters read them so that one compiled environment
# serves every buyer's locale and time zone.
_LOCALE_VAR = "_format_locale"


def _loc(ctx: Context) -> Locale:
    return babel_locale(str(ctx[_LOCALE_VAR]))


@pass_context
def _fmt_date(ctx: Context, value: date | datetime | None, format: str = "long") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        tz = ZoneInfo(str(ctx["timezone"]))
        value = value.astimezone(tz).date() if value.tzinfo else value.date()
    return _format_day(value, format, str(ctx[_LOCALE_VAR]))


@lru_cache(maxsize=4096)
def _format_day(day: date, format: str, locale: str) -> str:
    """A day in a locale's words: pure, and the same few days recur in every message of a run."""
    loc = babel_locale(locale)
    pattern = _LONG_DATE_IN_PROSE.get(loc.language, format) if format == "long" else format
    return str(format_date(day, format=pattern, locale=loc))


@pass_context
def _fmt_number(ctx: Context, value: int | float | Decimal) -> str:
    return str(format_decimal(value, locale=_loc(ctx)))


@pass_context
def _fmt_money(ctx: Context, value: Decimal | int | float, currency: str) -> str:
    return str(format_currency(value, currency, locale=_loc(ctx)))


@pass_context
def _fmt_percent(ctx: Context, value: Decimal | int | float) -> str:
    """A percentage given as a number of percent (20 means 20%), in the locale's own form
    ("20 %" in German and French), with the decimals staff gave and no more."""
    fraction = Decimal(str(value)) / 100
    return str(format_percent(fraction, locale=_loc(ctx), decimal_quantization=False))


@pass_context
def _fmt_list(ctx: Context, values: Any) -> str:
    items = [str(v) for v in values]
    return str(format_list(items, locale=_loc(ctx))) if items else ""


@pass_context
def _country_name(ctx: Context, code: str) -> str:
    return str(_loc(ctx).territories.get(code.upper(), code)) if code else ""


_FILTERS: dict[str, Callable[..., Any]] = {
    "date": _fmt_date,
    "number": _fmt_number,
    "money": _fmt_money,
    "percent": _fmt_percent,
    "join_list": _fmt_list,
    "country_name": _country_name,
}


@lru_cache(maxsize=64)
def _environment(roots: tuple[Path, ...], folder: str, autoescape: bool) -> SandboxedEnvironment:
    # Locale folders first (seller, then package), then the roots for the shared layout.
    loaders = [FileSystemLoader(root / folder) for root in roots]
    loaders += [FileSystemLoader(root) for root in roots]
    env = SandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=True,
    )
    env.filters.update(_FILTERS)
    return env


def _render_block(template: Template, block: str, variables: Mapping[str, Any], locale: str) -> str:
    render_block = template.blocks.get(block)
    if render_block is None:  # a template without a subject or body block is as good as missing
        raise MissingTemplate(f"{template.name}#{block}", locale)
    return "".join(render_block(template.new_context(dict(variables))))


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_SPACES = re.compile(r"[ \t]+\n")
_BLANKS = re.compile(r"\n{3,}")


def _clean_subject(subject: str) -> str:
    return " ".join(_CONTROL.sub(" ", subject).split())


def _clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n")
    text = _SPACES.sub("\n", text)
    return _BLANKS.sub("\n\n", text).strip() + "\n"


_BULLET = re.compile(r"^- ")
_NUMBERED = re.compile(r"^\d+\. ")


def paragraphs_to_html(escaped_body: str) -> Markup:
    """Turn an already-escaped plain body into HTML paragraphs and lists."""
    blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", _clean_text(escaped_body)) if b.strip()]
    html: list[str] = []
    for block in blocks:
        lines = block.split("\n")
        if all(_BULLET.match(line) for line in lines):
            items = "".join(f"<li>{_BULLET.sub('', line)}</li>" for line in lines)
            html.append(f"<ul>{items}</ul>")
        elif all(_NUMBERED.match(line) for line in lines):
            items = "".join(f"<li>{_NUMBERED.sub('', line)}</li>" for line in lines)
            html.append(f"<ol>{items}</ol>")
        else:
            html.append("<p>" + "<br>\n".join(lines) + "</p>")
    return Markup("\n".join(html))  # every piece was escaped by the HTML environment


_TRUSTED_URL_FIELDS = ("tracking_url", "review_url")


def _link_trusted_urls(content: Markup, context: MessageContext | StaffContext) -> Markup:
    """Make the store's own URLs (tracking, review) clickable in HTML. Only these exact values are
    linked, never a URL-looking piece of buyer or carrier text, and never inside a longer URL."""
    urls = [
        str(escape(url))
        for url in (getattr(context, field, None) for field in _TRUSTED_URL_FIELDS)
        if isinstance(url, str) and url.startswith(("https://", "http://"))
    ]
    if not urls:
        return content
    alternatives = "|".join(re.escape(u) for u in sorted(set(urls), key=len, reverse=True))
    pattern = re.compile(rf"(?<![^\s>])(?:{alternatives})(?![^\s<])")
    linked = pattern.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', str(content))
    return Markup(linked)  # the URLs were escaped above; the rest was escaped by the environment


def render(
    kind: str,
    context: MessageContext | StaffContext,
    locale: str,
    *,
    template_dir: Path | str | None = None,
) -> Rendered:
    """Render `kind` for `context` in `locale` (`pt-BR`, `de`, ...).

    The template is looked up as written, then by language, in `template_dir` before the package.
    Buyer kinds raise MissingTemplate when neither exists; staff kinds fall back to English.
    Dates and numbers are formatted for `locale` itself, so `en-US` and `en-GB` share the English
    text but not the date order. A buyer message that breaks a content rule (`messages.rules`), for
    example an override that puts a link in a customs message, raises ContentRuleViolation.
    """
    kind = Kind(kind)
    root = Path(template_dir) if template_dir is not None else None
    if kind in STAFF_KINDS:
        if not isinstance(context, StaffContext):
            raise TypeError(f"{kind.value!r} is a staff kind and needs a StaffContext")
        try:
            folder = template_locale(kind.value, locale, template_dir=root)
        except MissingTemplate:
            folder = template_locale(kind.value, STAFF_LOCALE, template_dir=root)
    elif kind in BUYER_KINDS:
        if not isinstance(context, MessageContext):
            raise TypeError(f"{kind.value!r} is a buyer kind and needs a MessageContext")
        check_context(kind, context)
        folder = template_locale(kind.value, locale, template_dir=root)
    else:
        raise ValueError(f"{kind.value!r} is a marketplace action, not a message")

    roots = tuple(_roots(root))
    variables: dict[str, Any] = context.variables()
    if kind in CUSTOMS_KINDS or (
        kind is Kind.PROMISED_UPDATE
        and variables["situation"] == Situation.AWAITING_CUSTOMS_PAYMENT
    ):
        # Quoted carrier or buyer words may hold a link; a customs message must never carry one.
        variables = {k: strip_links(v) if isinstance(v, str) else v for k, v in variables.items()}
    variables["kind"] = kind.value
    variables[_LOCALE_VAR] = normalise(locale)
    text_env = _environment(roots, folder, False)
    html_env = _environment(roots, folder, True)

    text_template = text_env.get_template(f"{kind.value}.j2")
    subject = _clean_subject(_render_block(text_template, "subject", variables, folder))
    text = _clean_text(_render_block(text_template, "body", variables, folder))

    html_template = html_env.get_template(f"{kind.value}.j2")
    if "html" in html_template.blocks:
        content = Markup(_render_block(html_template, "html", variables, folder))
    else:
        content = paragraphs_to_html(_render_block(html_template, "body", variables, folder))
        content = _link_trusted_urls(content, context)
    layout = html_env.get_template("_layout.html.j2")
    html = (
        layout.render(
            content=content,
            subject=subject,
            lang=normalise(locale),
            dir="rtl" if is_rtl(folder) else "ltr",
            store_name=getattr(context, "store_name", ""),
        ).rstrip("\n")
        + "\n"
    )
    if kind in BUYER_KINDS:
        found = violations(kind.value, subject, text, html)
        if found:
            raise ContentRuleViolation(kind.value, folder, found)
    return Rendered(subject=subject, text=text, html=html, locale=folder)


__all__ = [
    "PACKAGE_TEMPLATES",
    "REQUIRED_FIELDS",
    "SITUATION_VARIANTS",
    "STAFF_LOCALE",
    "IncompleteContext",
    "MissingTemplate",
    "Rendered",
    "check_context",
    "choose_locale",
    "first_available",
    "has_template",
    "paragraphs_to_html",
    "render",
    "template_locale",
]
