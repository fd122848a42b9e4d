"""Reading order files (CSV, JSON Lines) into validated rows, before anything touches the database.

The whole file is checked first and every problem is reported with its line, field and reason, so a
seller fixes the file once instead of discovering errors one run at a time. Tracking numbers that look
mistyped (UPU S10 check digit) are warnings, not rejections: carriers sometimes accept them.

Fields (CSV header names; JSON Lines keys are the same):
  order_id          required; the marketplace's order number
  source            aliexpress, shopify, ebay, wish, shopee, manual (default) or other
  buyer_name        how the buyer is addressed
  email             buyer email (optional when messages go through the marketplace chat)
  phone             optional
  locale            buyer language, e.g. pt-BR (optional: the country's language is used)
  country           destination, ISO 3166-1 alpha-2 (BR, RU, ...); required
  ship_date         YYYY-MM-DD (taken as 00:00 UTC) or an ISO date-time with offset; required
  tracking_numbers  one or more, separated by ';' ',' or spaces (JSON: a list or a string)
  carrier           carrier name if known (optional)
  promised_days     the marketplace's promised delivery days (optional)
  product, quantity what was bought (quantity defaults to 1)
  timezone          buyer's IANA time zone for quiet hours (optional: the country's is used)
  channel           email, webhook or manual (optional: email when there is an address)
  state             open (default), closed, disputed or cancelled
  order_value       what the buyer paid (optional): a non-negative amount with at most two
                    decimals, "12.50" or "12,50", at most 1,000,000; a refund offer's full
                    refund is this amount by default (JSON: a number or a string)
  currency          ISO 4217 code of order_value (BRL, EUR, ...; upper-cased); required when
                    order_value is given
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.numbers import list_currencies

from carriers.numbers import normalise, number_warning
from daemon.config import check_locale
from daemon.countries import country_codes
from daemon.models import OrderState

FIELDS = (
    "order_id",
    "source",
    "buyer_name",
    "email",
    "phone",
    "locale",
    "country",
    "ship_date",
    "tracking_numbers",
    "carrier",
    "promised_days",
    "product",
    "quantity",
    "timezone",
    "channel",
    "state",
    "order_value",
    "currency",
)
_TEXT_FIELDS = frozenset(FIELDS) - {"tracking_numbers"}  # a list is fine there
REQUIRED = ("order_id", "country", "ship_date", "tracking_numbers")
SOURCES = frozenset({"aliexpress", "shopify", "ebay", "wish", "shopee", "manual", "other"})
CHANNELS = frozenset({"", "email", "webhook", "manual"})
IMPORT_STATES = frozenset(
    {OrderState.OPEN, OrderState.CLOSED, OrderState.DISPUTED, OrderState.CANCELLED}
)
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
_SPLIT = re.compile(r"[;,\s]+")
# An amount as sellers' exports write it: digits, then a point or a comma and one or two decimals
# (no thousands separators, no sign, no exponent: "1,234.50" would be ambiguous).
_AMOUNT = re.compile(r"^[0-9]+(?:[.,][0-9]{1,2})?$")
_AMOUNT_MAX = Decimal("1000000")
_CENTS = Decimal("0.01")
_LOCALE_OK: dict[str, bool] = {}
_ZONE_OK: dict[str, bool] = {}


class OrderRow(NamedTuple):
    """One validated order as the file describes it.

    A NamedTuple, not a frozen dataclass: one is built per row, and a frozen dataclass's
    __init__ (a setattr per field) cost a third of validating a row.
    """

    line: int
    order_id: str
    source: str
    buyer_name: str
    email: str
    phone: str
    locale: str
    country: str
    shipped_at: datetime
    tracking_numbers: tuple[str, ...]
    carrier: str
    promised_days: int | None
    product: str
    quantity: int
    timezone: str
    channel: str
    state: str
    value: Decimal | None  # order_value, to two decimals
    currency: str


@dataclass(frozen=True)
class RowProblem:
    """What is wrong (or doubtful) in one row: line number, field and reason."""

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


@dataclass
class ParsedFile:
    path: Path
    rows: list[OrderRow] = field(default_factory=list)
    errors: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    bad_lines: set[int] = field(default_factory=set)
    total: int = 0


class _Stripped(dict[str, str]):
    """A record whose values are all text, already stripped (a CSV row)."""


class ImportFileError(Exception):
    """The file as a whole cannot be read (missing, unknown format, no header, bad columns)."""


def detect_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in ("csv", "jsonl"):
            raise ImportFileError(f"{path}: unknown format {explicit!r}; use csv or jsonl")
        return explicit
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise ImportFileError(
        f"{path}: cannot tell the format from {suffix!r}; pass --format csv|jsonl"
    )


def read_records(path: Path, fmt: str) -> Iterator[tuple[int, Mapping[str, Any] | RowProblem]]:
    """Yield (line number, raw record) pairs; a line that cannot be parsed yields a RowProblem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if fmt == "csv":
        yield from _csv_records(path, text)
    else:
        yield from _jsonl_records(text)


def _csv_records(path: Path, text: str) -> Iterator[tuple[int, Mapping[str, Any] | RowProblem]]:
    # csv.reader and one dict(zip) per row: DictReader does the same with more Python per row.
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    if not header:
        raise ImportFileError(f"{path}: empty file or no header row")
    unknown = [h for h in header if h not in FIELDS]
    if unknown:
        raise ImportFileError(
            f"{path}: line 1: unknown column(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}"
        )
    missing = [h for h in REQUIRED if h not in header]
    if missing:
        raise ImportFileError(f"{path}: line 1: missing required column(s) {', '.join(missing)}")
    width = len(header)
    for values in reader:
        if not values:
            continue
        line = reader.line_num
        if len(values) > width:
            yield line, RowProblem(line, "(row)", "more values than header columns")
            continue
        if not "".join(values).strip():  # a row of empty cells (one C call, not one per cell)
            continue
        # A short row lacks its last keys, which read as empty. Every cell is text: stripped
        # here in one pass, so validation takes the record as its texts.
        yield line, _Stripped(zip(header, map(str.strip, values), strict=False))


def _jsonl_records(text: str) -> Iterator[tuple[int, Mapping[str, Any] | RowProblem]]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield (
                line,
                RowProblem(line, "(json)", f"not valid JSON: {exc.msg} at column {exc.colno}"),
            )
            continue
        if not isinstance(record, dict):
            yield line, RowProblem(line, "(json)", "each line must be a JSON object")
            continue
        unknown = sorted(k for k in record if k not in FIELDS)
        if unknown:
            yield line, RowProblem(line, unknown[0], "unknown field")
            continue
        yield line, record


def parse_file(path: Path, fmt: str | None = None) -> ParsedFile:
    """Read and validate every row; nothing is written. Duplicate order ids are errors."""
    parsed = ParsedFile(path)
    parsed.rows.extend(parse_rows(path, detect_format(path, fmt), parsed))
    return parsed


def parse_rows(path: Path, fmt: str, parsed: ParsedFile) -> Iterator[OrderRow]:
    """Each valid row of the file as it is read; its problems and row count go to `parsed`
    (`parsed.rows` is left alone). A row whose order id an earlier valid row has is an error.

    Lazy, so a caller can store rows while the rest of the file is still being read
    (`daemon.parse_ahead`); the file's problems are only complete once the last row is out.
    """
    seen: dict[str, int] = {}  # order id -> line of its first valid row
    flag = parsed.bad_lines.add  # bound once: a large file's hot loop
    for line, record in read_records(path, fmt):
        parsed.total += 1
        if isinstance(record, RowProblem):
            parsed.errors.append(record)
            flag(line)
            continue
        row, errors, warnings = validate_record(line, record)
        if warnings:
            parsed.warnings.extend(warnings)
        if row is not None:  # valid on its own: now the duplicate check
            first = seen.setdefault(row.order_id, line)
            if first == line:
                yield row
                continue
            errors.append(RowProblem(line, "order_id", f"{row.order_id!r} already on line {first}"))
        parsed.errors.extend(errors)
        flag(line)


def in_batches(rows: Iterable[OrderRow], size: int) -> Iterator[list[OrderRow]]:
    """`rows` in lists of `size` (the last one shorter), taken as they come: how an import
    passes rows on and stores them without holding the whole file."""
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def validate_record(
    line: int, record: Mapping[str, Any]
) -> tuple[OrderRow | None, list[RowProblem], list[RowProblem]]:
    """Check one raw record; returns the row (or None) with its errors and warnings."""
    errors: list[RowProblem] = []
    warnings: list[RowProblem] = []
    problem = RowProblem
    # A CSV row is its own texts; a JSON record's values are checked and stripped first.
    text = (record if type(record) is _Stripped else _texts(line, record, errors)).get

    order_id = text("order_id", "")
    country = text("country", "").upper()
    ship_date = text("ship_date", "")
    if not order_id:
        errors.append(problem(line, "order_id", "required"))
    if not country:
        errors.append(problem(line, "country", "required"))
    if not ship_date:
        errors.append(problem(line, "ship_date", "required"))

    if len(order_id) > 128:
        errors.append(problem(line, "order_id", "longer than 128 characters"))

    source = text("source", "").lower() or "manual"
    if source not in SOURCES:
        errors.append(
            problem(line, "source", f"{source!r} is not one of {', '.join(sorted(SOURCES))}")
        )

    buyer_name = " ".join(text("buyer_name", "").split())  # no CR/LF or tabs reach a message header

    email = text("email", "")
    if email and not _EMAIL.match(email):
        errors.append(problem(line, "email", f"{email!r} is not an email address"))

    locale = text("locale", "")
    if locale and not _locale_ok(locale):
        errors.append(
            problem(line, "locale", f"{locale!r} is not a known locale (e.g. pt-BR, ru, en)")
        )

    if country and country not in country_codes():
        errors.append(
            problem(line, "country", f"{country!r} is not an ISO 3166-1 alpha-2 country code")
        )

    shipped_at = None
    if ship_date:
        moment = _read_ship_date(ship_date)
        if isinstance(moment, str):
            errors.append(problem(line, "ship_date", moment))
        else:
            shipped_at = moment

    value = record.get("tracking_numbers")
    if type(value) is str and value.isalnum() and 5 <= len(value) <= 50:
        numbers: tuple[str, ...] = (value.upper(),)  # one plain number: the usual case
    else:
        numbers = _tracking_numbers(value, line, errors)
    for number in numbers:
        warning = number_warning(number)
        if warning:
            warnings.append(problem(line, "tracking_numbers", warning))

    promised = text("promised_days", "")
    promised_days = (
        _positive_int(promised, "promised_days", line, errors, None) if promised else None
    )
    amount = text("quantity", "")
    quantity = _positive_int(amount, "quantity", line, errors, 1) if amount else 1

    timezone = text("timezone", "")
    if timezone and not _zone_ok(timezone):
        errors.append(
            problem(
                line,
                "timezone",
                f"{timezone!r} is not an IANA time zone (e.g. America/Sao_Paulo)",
            )
        )

    channel = text("channel", "").lower()
    if channel not in CHANNELS:
        errors.append(problem(line, "channel", f"{channel!r} is not one of email, webhook, manual"))
    elif channel == "email" and not email:
        errors.append(problem(line, "channel", "email channel needs an email address"))

    state = text("state", "").lower() or OrderState.OPEN
    if state not in IMPORT_STATES:
        errors.append(
            problem(line, "state", f"{state!r} is not one of {', '.join(sorted(IMPORT_STATES))}")
        )

    order_value = text("order_value", "")
    paid = _order_value(order_value, line, errors) if order_value else None
    currency = text("currency", "").upper()
    if currency and currency not in _currencies():
        errors.append(
            problem(line, "currency", f"{currency!r} is not an ISO 4217 currency code (e.g. BRL)")
        )
    elif order_value and not currency:
        errors.append(problem(line, "currency", "required when order_value is given"))

    if errors or shipped_at is None:
        return None, errors, warnings
    row = OrderRow(  # positional: keyword arguments cost a NamedTuple a dict per row
        line,
        order_id,
        source,
        buyer_name,
        email,
        text("phone", ""),
        locale,
        country,
        shipped_at,
        numbers,
        text("carrier", "").lower(),
        promised_days,
        text("product", ""),
        quantity if quantity is not None else 1,
        timezone,
        channel,
        state,
        paid,
        currency,
    )
    return row, errors, warnings


def _texts(line: int, record: Mapping[str, Any], errors: list[RowProblem]) -> dict[str, str]:
    """Every text field stripped, in one pass over the record (a large import's hot path)."""
    texts: dict[str, str] = {}
    for name, value in record.items():
        if type(value) is str:  # the CSV case
            texts[name] = value.strip()
        elif value is None or name not in _TEXT_FIELDS:
            continue
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            texts[name] = str(value)
        elif isinstance(value, str):
            texts[name] = value.strip()
        else:
            errors.append(RowProblem(line, name, "must be text"))
    return texts


def _locale_ok(locale: str) -> bool:
    ok = _LOCALE_OK.get(locale)
    if ok is None:
        try:
            check_locale(locale)
            ok = True
        except ValueError:
            ok = False
        _LOCALE_OK[locale] = ok
    return ok


def _zone_ok(name: str) -> bool:
    ok = _ZONE_OK.get(name)
    if ok is None:
        try:
            ZoneInfo(name)
            ok = True
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" (a folder)
            ok = False
        _ZONE_OK[name] = ok
    return ok


@lru_cache(maxsize=4096)
def _read_ship_date(value: str) -> datetime | str:
    """The UTC moment, or why not; cached because a file's rows share a few hundred dates."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"{value!r} is not YYYY-MM-DD or ISO date-time"
    if moment.tzinfo is None:
        return f"{value!r} has a time but no UTC offset"
    return moment.astimezone(UTC)


def _tracking_numbers(value: object, line: int, errors: list[RowProblem]) -> tuple[str, ...]:
    if isinstance(value, list):
        items = [str(v) for v in value]
    elif isinstance(value, str):
        items = _SPLIT.split(value.strip())
    elif value is None:
        items = []
    else:
        errors.append(RowProblem(line, "tracking_numbers", "must be text or a list"))
        return ()
    numbers: list[str] = []
    for item in items:
        number = normalise(item)
        if not number:
            continue
        if not number.isalnum() or not 5 <= len(number) <= 50:
            errors.append(
                RowProblem(line, "tracking_numbers", f"{item!r} is not 5-50 letters and digits")
            )
        elif number not in numbers:
            numbers.append(number)
    if not numbers and not any(e.field == "tracking_numbers" for e in errors):
        errors.append(RowProblem(line, "tracking_numbers", "required"))
    return tuple(numbers)


def _order_value(text: str, line: int, errors: list[RowProblem]) -> Decimal | None:
    """The amount to two decimals ("12,5" is 12.50), or None with an error naming the line."""
    if not _AMOUNT.match(text):
        reason = (
            "has more than two decimals"
            if re.match(r"^[0-9]+[.,][0-9]{3,}$", text)
            else "is not an amount (digits with at most two decimals, e.g. 12.50 or 12,50)"
        )
        errors.append(RowProblem(line, "order_value", f"{text!r} {reason}"))
        return None
    amount = Decimal(text.replace(",", ".")).quantize(_CENTS)
    if amount > _AMOUNT_MAX:
        errors.append(RowProblem(line, "order_value", f"{text!r} is over 1,000,000"))
        return None
    return amount


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def _positive_int(
    value: str, name: str, line: int, errors: list[RowProblem], default: int | None
) -> int | None:
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        errors.append(RowProblem(line, name, f"{value!r} is not a whole number"))
        return default
    if number <= 0:
        errors.append(RowProblem(line, name, f"{number} must be positive"))
        return default
    return number
