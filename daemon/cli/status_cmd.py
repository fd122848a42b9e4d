"""`parcelwatch status`: open parcels by country and status, and how many reached each stage."""

from __future__ import annotations

from typing import Annotated

import typer

from daemon.cli.common import out, print_json, state


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Open alarms, open shipments by destination and status, open orders at or past each stage."""
    from rich.table import Table

    from daemon.config import STAGE_KINDS
    from daemon.models import utcnow
    from daemon.queries import status_summary  # with the policy: only this command needs it

    st = state(ctx)
    summary = status_summary(st.engine(), st.config(), utcnow())
    if as_json:
        print_json(summary.as_dict())
        return
    if summary.alarms:  # one plain line each: a person must act, and grep must find them
        for alarm in summary.alarms:
            out.print(
                f"ALARM {alarm['source']}: {alarm['message']} (since {alarm['since']}, "
                f"{alarm['count']} times)",
                markup=False,
            )
    else:
        out.print("no open alarms", markup=False)
    out.print(
        f"{summary.open_orders} open orders, {summary.open_shipments} open shipments", markup=False
    )
    if summary.stale_tracking:
        carriers = ", ".join(f"{k} {v}" for k, v in summary.stale_tracking.items())
        out.print(f"tracking stale (no carrier answer for over a day): {carriers}", markup=False)
    statuses = sorted({s for counts in summary.by_country_status.values() for s in counts})
    if statuses:
        table = Table("country", *statuses, title="Open shipments by status")
        for country, counts in summary.by_country_status.items():
            table.add_row(country, *(str(counts.get(s, 0)) for s in statuses))
        out.print(table)
    if summary.past_stage:
        stages = Table("country", *STAGE_KINDS, title="Undelivered orders at or past each stage")
        for country, counts in summary.past_stage.items():
            stages.add_row(country, *(str(counts.get(k, 0)) for k in STAGE_KINDS))
        out.print(stages)
    if summary.outreach_states:
        states = ", ".join(f"{k} {v}" for k, v in sorted(summary.outreach_states.items()))
        out.print(f"outreach log: {states}", markup=False)
