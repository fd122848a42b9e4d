"""`parcelwatch log ...`: review the outreach log, show one entry, compose and approve or reject
offers, mark manual sends."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.table import Table

from daemon.cli.common import EXIT_INVALID_INPUT, EXIT_NOT_FOUND, fail, out, state
from daemon.compose import store_template_dir
from daemon.entry_view import show_entry
from daemon.models import Order as OrderRecord
from daemon.models import utcnow
from daemon.offer_options import OfferOptions
from daemon.review import (
    LogFilter,
    ReviewError,
    approvable_ids,
    approve,
    compose,
    export,
    list_log,
    mark_sent,
    reject,
    retry,
)
from messages.kinds import Kind as MessageKind
from messages.remedies import Remedies

app = typer.Typer(
    help="Review the outreach log: list, export, show, compose, approve, reject, mark sent.",
    invoke_without_command=True,
)

By = Annotated[str | None, typer.Option("--by", help="Who is acting (default: your user name).")]


def _who(by: str | None) -> str:
    if by:
        return by
    return os.environ.get("PARCELWATCH_USER") or getpass.getuser()


def _day(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        fail(f"--{name}: {value!r} is not a date (YYYY-MM-DD)", EXIT_INVALID_INPUT)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _filter(
    order: str | None,
    country: str | None,
    kind: str | None,
    state_: str | None,
    channel: str | None,
    since: str | None,
    until: str | None,
    text: str | None,
) -> LogFilter:
    return LogFilter(
        order_id=order,
        country=country,
        kind=kind,
        state=state_,
        channel=channel,
        since=_day(since, "since"),
        until=_day(until, "until"),
        text=text,
    )


Order = Annotated[str | None, typer.Option("--order", help="Only this order id.")]
Country = Annotated[str | None, typer.Option("--country", help="Destination, e.g. BR.")]
Kind = Annotated[str | None, typer.Option("--kind", help="Message kind, e.g. refund_offer.")]
StateOpt = Annotated[str | None, typer.Option("--state", help="e.g. awaiting_approval, sent.")]
Channel = Annotated[str | None, typer.Option("--channel", help="email, webhook or manual.")]
Since = Annotated[str | None, typer.Option("--since", help="Created on or after (YYYY-MM-DD).")]
Until = Annotated[str | None, typer.Option("--until", help="Created before (YYYY-MM-DD).")]
Text = Annotated[str | None, typer.Option("--text", help="Search reason, subject, body, buyer.")]


@app.callback()
def show_log(
    ctx: typer.Context,
    order: Order = None,
    country: Country = None,
    kind: Kind = None,
    state_: StateOpt = None,
    channel: Channel = None,
    since: Since = None,
    until: Until = None,
    text: Text = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="Export as csv, json or jsonl instead of a table."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many rows.")] = None,
) -> None:
    """List the log (filters combine); with --format, export it to standard output."""
    if ctx.invoked_subcommand is not None:
        return
    flt = _filter(order, country, kind, state_, channel, since, until, text)
    entries = list_log(state(ctx).engine(), flt, limit)
    if fmt is not None:
        try:
            sys.stdout.write(export(entries, fmt))
        except ValueError as exc:
            fail(str(exc), EXIT_INVALID_INPUT)
        return
    table = Table("id", "created (UTC)", "order", "ctry", "kind", "channel", "state", "reason")
    for e in entries:
        table.add_row(
            str(e.row.id),
            f"{e.row.created_at:%Y-%m-%d %H:%M}",
            e.order_id,
            e.country,
            e.row.kind,
            e.row.channel or "-",
            e.row.state,
            e.row.reason,
        )
    out.print(table)
    out.print(f"{len(entries)} entries", markup=False)


def _act(ctx: typer.Context, action: str, ids: list[int], run: object) -> None:
    assert callable(run)
    try:
        changed = run(state(ctx).engine(), ids)
    except ReviewError as exc:
        fail(str(exc), EXIT_INVALID_INPUT)
    out.print(f"{action} {len(changed)}: {', '.join(str(i) for i in changed)}", markup=False)


# A refund offer's remedies, the same options on `compose` and `approve`.
FullRefund = Annotated[
    bool,
    typer.Option("--full-refund", help="Offer a full refund of the order's value (as imported)."),
]
FullRefundAmount = Annotated[
    str | None,
    typer.Option(
        "--full-refund-amount",
        metavar="AMOUNT",
        help="Offer a full refund of this amount instead (12.50 or 12,50).",
    ),
]
Reship = Annotated[bool, typer.Option("--reship", help="Offer a new parcel at no cost.")]
Partial = Annotated[
    str | None,
    typer.Option(
        "--partial",
        metavar="AMOUNT|PCT%",
        help="Offer a partial refund: an amount in the order's currency (15.00) or a percentage "
        "of the order (20%).",
    ),
]
Wait = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Offer to keep waiting with the buyer's protection extended (orders from "
        "store.protection_sources only).",
    ),
]
Line = Annotated[
    str, typer.Option("--line", metavar="TEXT", help="One line of your own (no links).")
]
Currency = Annotated[
    str | None,
    typer.Option(
        "--currency",
        metavar="CODE",
        help="The amounts' currency when the order has none on record (e.g. BRL).",
    ),
]


def _choice(options: OfferOptions) -> Callable[[OrderRecord], Remedies]:
    """Each order's remedies from the options (`--full-refund` takes that order's value)."""
    return lambda order: options.remedies_for(order.order_id, order.value, order.currency)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    row_id: Annotated[int, typer.Argument(help="Log entry id.")],
) -> None:
    """Everything to decide on one entry: order, reason, tracking, dates, remedies, and the exact
    subject and body the send job would send now (or sent), in the buyer's language."""
    st = state(ctx)
    config = st.config()
    text = show_entry(st.engine(), config, row_id, utcnow(), store_template_dir(config))
    if text is None:
        fail(f"no log entry {row_id}", EXIT_NOT_FOUND)
    out.print(text, markup=False, highlight=False, emoji=False, end="")


@app.command("compose")
def compose_cmd(
    ctx: typer.Context,
    row_id: Annotated[int, typer.Argument(help="Log entry id of a refund offer.")],
    full_refund: FullRefund = False,
    full_refund_amount: FullRefundAmount = None,
    reship: Reship = False,
    partial: Partial = None,
    wait: Wait = False,
    line: Line = "",
    currency: Currency = None,
    by: By = None,
) -> None:
    """Choose what a refund offer waiting for approval puts to the buyer; then check it with
    `log show ID` and let it go with `log approve ID`."""
    options = OfferOptions(full_refund, full_refund_amount, reship, partial, wait, line, currency)
    if not options.given():
        fail(f"choose what to offer: {_OPTIONS}", EXIT_INVALID_INPUT)
    st = state(ctx)
    sources = st.config().store.protection_sources
    try:
        remedies = compose(st.engine(), row_id, _choice(options), _who(by), utcnow(),
                           protection_sources=sources)  # fmt: skip
    except ReviewError as exc:
        fail(str(exc), EXIT_INVALID_INPUT)
    out.print(f"composed {row_id}: {remedies.summary()}", markup=False)
    out.print(
        f"check it with `parcelwatch log show {row_id}`, then `parcelwatch log approve {row_id}`",
        markup=False,
    )


_OPTIONS = "--full-refund, --full-refund-amount AMOUNT, --reship, --partial AMOUNT|PCT%, --wait"


@app.command("approve")
def approve_cmd(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(help="Log entry ids.")] = None,
    note: Annotated[str, typer.Option("--note", help="Why, for the record.")] = "",
    by: By = None,
    all_matching: Annotated[
        bool, typer.Option("--all", help="Approve every pending entry matching the filters.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="With --all and no filter: yes, every pending entry.")
    ] = False,
    order: Order = None,
    country: Country = None,
    kind: Kind = None,
    full_refund: FullRefund = False,
    full_refund_amount: FullRefundAmount = None,
    reship: Reship = False,
    partial: Partial = None,
    wait: Wait = False,
    line: Line = "",
    currency: Currency = None,
) -> None:
    """Approve entries waiting for approval so they can go out. A refund offer must say what it
    offers: compose it first (`log compose`), or give the remedy options here to compose and
    approve in one (each order's own value with --full-refund)."""
    st = state(ctx)
    engine = st.engine()
    options = OfferOptions(full_refund, full_refund_amount, reship, partial, wait, line, currency)
    composing = options.given()
    targets = list(ids or [])
    if all_matching:
        if not (order or country or kind or yes):
            fail(
                "--all with no filter approves every entry waiting for approval: narrow it with "
                "--order, --country or --kind, or confirm with --yes",
                EXIT_INVALID_INPUT,
            )
        if composing and kind not in (None, MessageKind.REFUND_OFFER):
            fail(f"remedy options compose refund offers, not {kind}", EXIT_INVALID_INPUT)
        if composing:
            kind = MessageKind.REFUND_OFFER.value
        targets += approvable_ids(engine, LogFilter(order_id=order, country=country, kind=kind))
    elif order or country or kind:
        fail("filters select entries only together with --all", EXIT_INVALID_INPUT)
    if not targets:
        fail("nothing to approve: give ids, or --all with filters", EXIT_INVALID_INPUT)
    who, now = _who(by), utcnow()
    sources = st.config().store.protection_sources if composing else ()
    remedies = _choice(options) if composing else None
    _act(
        ctx,
        "approved",
        targets,
        lambda e, i: approve(e, i, who, now, note, remedies=remedies, protection_sources=sources),
    )


@app.command("reject")
def reject_cmd(
    ctx: typer.Context,
    ids: Annotated[list[int], typer.Argument(help="Log entry ids.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it must not go out.")] = "",
    by: By = None,
) -> None:
    """Reject pending entries; they will never be sent."""
    who, now = _who(by), utcnow()
    _act(ctx, "rejected", ids, lambda e, i: reject(e, i, who, now, reason))


@app.command("mark-sent")
def mark_sent_cmd(
    ctx: typer.Context,
    ids: Annotated[list[int], typer.Argument(help="Log entry ids.")],
    note: Annotated[str, typer.Option("--note")] = "",
    by: By = None,
) -> None:
    """Record that a manual message was sent by hand (or an unknown-outcome send did go out)."""
    who, now = _who(by), utcnow()
    _act(ctx, "marked sent", ids, lambda e, i: mark_sent(e, i, who, now, note))


@app.command("retry")
def retry_cmd(
    ctx: typer.Context,
    ids: Annotated[list[int], typer.Argument(help="Log entry ids.")],
    note: Annotated[str, typer.Option("--note")] = "",
    by: By = None,
) -> None:
    """Queue a failed or unknown-outcome entry again, after checking it did not go out."""
    who, now = _who(by), utcnow()
    _act(ctx, "re-queued", ids, lambda e, i: retry(e, i, who, now, note))
