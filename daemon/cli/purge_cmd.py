"""`parcelwatch purge --older-than DAYS`: remove buyers' personal data from finished orders."""

from __future__ import annotations

from typing import Annotated

import typer

from daemon.cli.common import out, print_json, state
from daemon.models import utcnow
from daemon.purge import purge as purge_orders


def purge(
    ctx: typer.Context,
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than",
            min=0,
            help="Only orders whose last activity is more than this many days ago.",
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Remove buyer name, email, phone and message texts from closed, cancelled, opted-out and
    delivered-and-done orders; keep countries, dates, states and kinds for statistics."""
    report = purge_orders(state(ctx).engine(), utcnow(), older_than, dry_run=dry_run)
    if as_json:
        print_json({**report.as_dict(), "dry_run": dry_run})
        return
    verb = "would purge" if dry_run else "purged"
    out.print(
        f"{verb} buyer data of {report.orders} orders and the texts of {report.log_rows} log rows "
        f"(finished before {report.cutoff:%Y-%m-%d %H:%M} UTC)",
        markup=False,
    )
