"""`parcelwatch orders ...`: import order files and look at one order."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from daemon.cli.common import EXIT_INVALID_INPUT, EXIT_NOT_FOUND, err, fail, out, print_json, state

# Each command imports what it uses: an import needs neither the story's templates nor the
# policy, and `orders show` does not need the importer.

app = typer.Typer(help="Import and inspect orders.", no_args_is_help=True)

_MAX_LISTED = 200  # a file with thousands of bad rows lists the first ones and counts the rest
# A file this large (some 5,000 rows) shows a progress line while it is imported.
_PROGRESS_FROM_BYTES = 500_000


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or JSON Lines file of orders.")],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the good rows even if some are bad.")
    ] = False,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or jsonl (default: from the file name).")
    ] = None,
) -> None:
    """Import orders. The whole file is checked: one bad row and nothing is written."""
    from rich.progress import MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from daemon.importer import ImportFileError
    from daemon.models import utcnow
    from daemon.order_store import import_rows
    from daemon.parse_ahead import parse_ahead

    st = state(ctx)
    try:
        # The file is read and checked in a second process while this one stores the rows
        # already checked, in one transaction that is rolled back if a bad row turns up.
        with parse_ahead(file, fmt) as reading:
            engine = st.engine()
            with Progress(
                TextColumn("importing"),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
                disable=not _large(file),
            ) as bar:
                task = bar.add_task("import", total=None)
                report = import_rows(
                    engine,
                    reading.rows(),
                    utcnow(),
                    progress=lambda n: bar.advance(task, n),
                    keep=lambda: skip_invalid or not reading.parsed.errors,
                )
            parsed = reading.parsed
    except ImportFileError as exc:
        fail(str(exc), EXIT_INVALID_INPUT)
    for warning in parsed.warnings[:_MAX_LISTED]:
        err.print(f"warning: {file}: {warning}", markup=False)
    for problem in parsed.errors[:_MAX_LISTED]:
        err.print(f"error: {file}: {problem}", markup=False)
    if len(parsed.errors) > _MAX_LISTED:
        err.print(f"... and {len(parsed.errors) - _MAX_LISTED} more errors", markup=False)
    if report is None:
        err.print(
            f"{file}: {len(parsed.bad_lines)} of {parsed.total} rows are invalid; nothing was "
            "imported (fix them, or pass --skip-invalid to import the valid rows)",
            markup=False,
        )
        raise typer.Exit(EXIT_INVALID_INPUT)
    taken = report.created + report.updated + report.unchanged
    out.print(
        f"{file}: {taken} rows taken: {report.created} new orders, "
        f"{report.updated} updated, {report.unchanged} unchanged; "
        f"{report.shipments_added} tracking numbers added, {report.shipments_closed} replaced",
        markup=False,
    )
    if parsed.errors:
        lines = ", ".join(str(n) for n in sorted(parsed.bad_lines)[:_MAX_LISTED])
        out.print(f"{len(parsed.bad_lines)} invalid rows skipped (lines {lines})", markup=False)
        raise typer.Exit(EXIT_INVALID_INPUT)


def _large(file: Path) -> bool:
    try:
        return file.stat().st_size >= _PROGRESS_FROM_BYTES
    except OSError:
        return False  # the reader says what is wrong with it


@app.command("show")
def show(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The marketplace order number.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One order: its shipments, their tracking events, and everything said to the buyer."""
    from rich.table import Table

    from daemon.queries import order_view

    view = order_view(state(ctx).engine(), order_id)
    if view is None:
        fail(f"no order {order_id!r}", EXIT_NOT_FOUND)
    if as_json:
        print_json(view.as_dict())
        return
    o = view.order
    out.print(f"[bold]Order {o.order_id}[/] ({o.source}) — {o.state}")
    out.print(
        f"buyer: {o.buyer_name or '-'} <{o.email or 'no email'}> locale {o.locale or '-'}  "
        f"to {o.country}  shipped {o.shipped_at:%Y-%m-%d}  "
        f"promised {o.promised_days or '-'} days  product {o.product or '-'} x{o.quantity}  "
        f"paid {f'{o.value} {o.currency}' if o.value is not None else '-'}",
        markup=False,
    )
    for s in view.shipments:
        closed = " (closed)" if s.closed else ""
        out.print(
            f"\n[bold]{s.tracking_number}[/]{closed} carrier {s.carrier or '-'} via "
            f"{s.adapter or '-'}: {s.status or 'not checked yet'}"
        )
        table = Table("when (UTC)", "status", "code", "where", "what", box=None)
        for e in view.events.get(s.id or 0, []):
            table.add_row(
                f"{e.occurred_at:%Y-%m-%d %H:%M}", e.status, e.raw_code, e.location, e.description
            )
        if table.row_count:
            out.print(table)
    out.print("\n[bold]Outreach[/]")
    if not view.outreach:
        out.print("nothing yet")
        return
    log = Table("id", "due (UTC)", "kind", "state", "reason", box=None)
    for row in view.outreach:
        log.add_row(str(row.id), f"{row.due_at:%Y-%m-%d %H:%M}", row.kind, row.state, row.reason)
    out.print(log)


@app.command("story")
def story(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The marketplace order number.")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained page for a dispute.")
    ] = None,
) -> None:
    """The whole story of an order: tracking history and every message and action, in time order."""
    from daemon.models import utcnow
    from daemon.queries import order_view
    from daemon.story import render_html, timeline

    view = order_view(state(ctx).engine(), order_id)
    if view is None:
        fail(f"no order {order_id!r}", EXIT_NOT_FOUND)
    for item in timeline(view):
        marker = "📦" if item.what == "tracking" else "✉"
        state_text = f" [{item.state}]" if item.state else ""
        out.print(f"{item.at:%Y-%m-%d %H:%M} {marker} {item.title}{state_text}", markup=False)
        for line in item.detail.splitlines():
            out.print(f"    {line}", markup=False)
    if html is not None:
        html.write_text(render_html(view, utcnow()), encoding="utf-8")
        out.print(f"wrote {html}", markup=False)


@app.command("opt-out")
def opt_out_cmd(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The marketplace order number.")],
    reason: Annotated[str, typer.Option("--reason")] = "",
    by: Annotated[str | None, typer.Option("--by")] = None,
) -> None:
    """Stop every buyer message for an order, including ones already planned."""
    from daemon.cli.log_cmd import _who
    from daemon.models import utcnow
    from daemon.review import ReviewError, opt_out

    try:
        suppressed = opt_out(state(ctx).engine(), order_id, _who(by), utcnow(), reason)
    except ReviewError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    out.print(f"{order_id}: opted out; {suppressed} pending messages suppressed", markup=False)
