"""One log entry as staff need it to decide (`parcelwatch log show ID`): plain text.

Staff approved refund offers blind: no subject, body, language or amount until it was sent. Here
they see the order, why the entry was decided and on what tracking, the dates it promises, the
remedies composed, and the exact subject and body the send job would send now, in the buyer's
language, made by the send job's own function (`daemon.compose.compose_message`) from the same
rows. An entry that went out (or may have) shows what was stored when it was sent instead. A
refund offer nobody has composed shows how to compose it and no message: there is nothing true to
show yet.

Everything printed is data (buyer names, carrier words): the caller prints it without markup.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from daemon.compose import (
    Material,
    buyer_day,
    buyer_timezone,
    compose_message,
    load_material,
    protection_task,
)
from daemon.config import Config
from daemon.db import session_scope
from daemon.models import OutreachState
from messages.kinds import Audience, Kind
from messages.remedies import Remedies
from messages.render import MissingTemplate

# States in which the message went out, may have, or waits to be sent by hand: the stored text is
# the one that counts.
_STORED = frozenset(
    {
        OutreachState.SENT,
        OutreachState.SENDING,
        OutreachState.NEEDS_REVIEW,
        OutreachState.MANUAL_PENDING,
    }
)
# States from which the row will not be sent unless someone acts on it again.
_SETTLED = frozenset(
    {
        OutreachState.REJECTED,
        OutreachState.SUPPRESSED,
        OutreachState.SKIPPED,
        OutreachState.WITHDRAWN,
        OutreachState.HELD,
    }
)


def show_entry(
    engine: Engine, config: Config, row_id: int, now: datetime, template_dir: Path | None
) -> str | None:
    """The entry as plain text, or None when there is no entry `row_id`."""
    with session_scope(engine) as session:
        material = load_material(session, [row_id]).get(row_id)
    if material is None:
        return None
    lines = _facts(config, material)
    lines.append("")
    lines += _message(config, material, now, template_dir)
    return "\n".join(lines) + "\n"


def _facts(config: Config, m: Material) -> list[str]:
    row, order = m.row, m.order
    tz = buyer_timezone(config, order)
    approval = " (needs approval)" if row.needs_approval else ""
    paid = f"{order.value} {order.currency}" if order.value is not None else "-"
    lines = [
        f"log entry {row.id}: {row.kind} to the {row.audience}, {row.state}{approval}",
        f"order: {order.order_id} ({order.source}, {order.state})  buyer: "
        f"{order.buyer_name or '-'} <{order.email or 'no email'}>  locale {order.locale or '-'}  "
        f"to {order.country}  time zone {tz}",
        f"       shipped {order.shipped_at:%Y-%m-%d}  product {order.product or '-'} "
        f"x{order.quantity}  paid {paid}",
        f"channel: {row.channel or '-'}  trigger: {row.trigger}",
        f"situation: {row.situation or '-'}",
        f"reason: {row.reason or '-'}",
        "tracking when decided:",
        *(f"  {line}" for line in _snapshot(row.tracking_snapshot)),
        f"dates: due {row.due_at:%Y-%m-%d %H:%M} UTC; next update {_day(row.next_update_at, tz)}; "
        f"protection until {_day(row.protection_until, tz)}; "
        f"expected by {_day(row.expected_by, tz)} (the buyer's days, {tz})",
    ]
    if row.kind == Kind.REFUND_OFFER:
        remedies = Remedies.from_json(row.remedies)
        lines.append(
            f"remedies: {remedies.summary()}" if remedies else "remedies: not composed yet"
        )
    if row.decided_by:
        decided = f"{row.decided_at:%Y-%m-%d %H:%M} UTC" if row.decided_at else "-"
        note = f"; note: {row.decision_note}" if row.decision_note else ""
        lines.append(f"decided by {row.decided_by} at {decided}{note}")
    if row.sent_at is not None:
        lines.append(f"sent at {row.sent_at:%Y-%m-%d %H:%M} UTC")
    if row.last_error:
        lines.append(f"last error: {row.last_error}")
    return lines


def _message(config: Config, m: Material, now: datetime, template_dir: Path | None) -> list[str]:
    row = m.row
    if row.state in _STORED and (row.subject or row.body_text):
        head = f"--- the message as sent ({row.locale or '-'}) ---"
        if row.state == OutreachState.MANUAL_PENDING:
            head = f"--- the message to send by hand ({row.locale or '-'}) ---"
        return [head, f"Subject: {row.subject}", "", row.body_text.rstrip("\n")]
    if row.kind == Kind.REFUND_OFFER and not row.remedies:
        return [
            "Not composed yet: a refund offer says only what staff chose. Choose, for example:",
            f"  parcelwatch log compose {row.id} --full-refund --reship",
            f"  parcelwatch log compose {row.id} --partial 20% --wait --line 'TEXT'",
            "(options: --full-refund, --full-refund-amount AMOUNT, --reship, "
            "--partial AMOUNT|PCT%, --wait, --line TEXT; or the same on `parcelwatch log approve`)",
        ]
    settled = (
        [f"(it will not be sent as things stand: the entry is {row.state})"]
        if row.state in _SETTLED
        else []
    )
    try:
        if row.kind == Kind.EXTEND_PROTECTION:
            subject, text = protection_task(config, m.order, row)
            return [
                "--- the task staff will be given ---",
                *settled,
                f"Subject: {subject}",
                "",
                text,
            ]
        message, locale = compose_message(
            config, row, m.order, m.shipments, m.last_event, m.pickup_event, now, template_dir
        )
    except (MissingTemplate, ValueError) as exc:
        return [*settled, f"It would not be sent now: held for staff: {exc}"]
    to = "staff" if row.audience == Audience.STAFF else "the buyer"
    return [
        f"--- the message to {to} ({locale}), as it would be sent now ---",
        *settled,
        f"Subject: {message.subject}",
        "",
        message.text.rstrip("\n"),
    ]


def _day(moment: datetime | None, tz: str) -> str:
    day = buyer_day(moment, tz)
    return day.isoformat() if day else "-"


def _snapshot(text: str) -> list[str]:
    """The tracking snapshot decide kept with the row, one line per number."""
    if not text:
        return ["-"]
    try:
        data: Any = json.loads(text)
    except ValueError:
        return [text]
    if not isinstance(data, dict):
        return [text]
    lines = []
    for number, facts in data.items():
        if not isinstance(facts, dict):
            lines.append(f"{number}: {facts}")
            continue
        last = facts.get("last_event") or {}
        where = f" ({last.get('location')})" if last.get("location") else ""
        latest = (
            f"; latest {last.get('at', '')}: {last.get('description', '')}{where}" if last else ""
        )
        lines.append(
            f"{number}: {facts.get('status') or 'not checked yet'}, "
            f"{facts.get('events', 0)} events{latest}"
        )
    return lines or ["-"]
