"""`parcelwatch preview`: what the next passes would log and send, sending nothing."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer

from daemon.cli.common import out, print_json, state


def preview(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What the next decide pass would log and the next send run would send, for the real
    database, without writing or sending anything: run it before the first `run` on a backlog."""
    from daemon.models import utcnow
    from daemon.preview import preview as lines_for

    st = state(ctx)
    lines = lines_for(st.engine(), st.config(), utcnow())
    if as_json:
        print_json([line.as_dict() for line in lines])
        return
    decided = [line for line in lines if line.source == "decide"]
    waiting = [line for line in lines if line.source == "log"]
    counts = Counter(
        "to send now" if line.goes_now else "waiting" if line.send_after else line.state
        for line in decided
    )
    summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    out.print(f"next decide pass: {len(decided)} new log rows ({summary or 'none'})", markup=False)
    for line in decided:
        when = f" from {line.send_after:%Y-%m-%d %H:%M}" if line.send_after else ""
        note = f" [{line.note}]" if line.note else ""
        out.print(
            f"  {line.order_id}  {line.kind}  {line.state}{when}  via {line.channel or '-'}: "
            f"{line.reason}{note}",
            markup=False,
        )
    out.print(f"already in the log, sent by the next send run: {len(waiting)}", markup=False)
    for line in waiting:
        out.print(
            f"  #{line.outreach_id} {line.order_id}  {line.kind}  {line.state}  "
            f"via {line.channel or '-'}: {line.reason}",
            markup=False,
        )
    out.print("nothing was written or sent", markup=False)
