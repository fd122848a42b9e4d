"""What the daemon would do next, for the real database, with nothing written and nothing sent.

`parcelwatch preview` is what a seller runs before the first `parcelwatch run` on a real backlog, or
after changing a window: the decide job's own reading and policy over every order that is due now
(`Decider.decide_range` only reads), plus the messages already in the log that the send job would
take now. Each line says what would be logged or sent, to which order, in which state, from when,
and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from daemon.config import Config
from daemon.decide import Decider
from daemon.leases import OUTREACH
from daemon.models import Order
from daemon.send import READY_STATES, ready_to_send

ORDERS = Order.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PreviewLine:
    """One thing the next passes would do."""

    order_id: str
    kind: str
    state: str  # as it would be logged (planned, awaiting_approval, held, skipped), or as it is
    source: str  # "decide": the next decide pass would log it; "log": already waiting to be sent
    due_at: datetime
    send_after: datetime | None  # not sent before this (one at a time, the budget)
    channel: str
    reason: str
    note: str
    outreach_id: int | None = None  # the log row, for what is already logged

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "kind": self.kind,
            "state": self.state,
            "source": self.source,
            "due_at": self.due_at.isoformat(),
            "send_after": self.send_after.isoformat() if self.send_after else None,
            "channel": self.channel,
            "reason": self.reason,
            "note": self.note,
            "outreach_id": self.outreach_id,
        }

    @property
    def goes_now(self) -> bool:
        """Would be sent by the send job's next run (no approval, no hold, no wait)."""
        return self.state in READY_STATES and self.send_after is None


def preview(engine: Engine, config: Config, now: datetime) -> list[PreviewLine]:
    """The next decide pass's new log rows, then the log rows the send job would take now."""
    rows = Decider(engine, config, lambda: now, processes=1).decide_all(now).log_rows()
    order_ids = _order_ids(engine, {row["order_pk"] for row in rows})
    lines = [
        PreviewLine(
            order_id=order_ids[row["order_pk"]],
            kind=row["kind"],
            state=row["state"],
            source="decide",
            due_at=row["due_at"],
            send_after=row["next_attempt_at"],
            channel=row["channel"],
            reason=row["reason"],
            note=row["decision_note"],
        )
        for row in rows
    ]
    lines.sort(key=lambda line: (line.order_id, line.due_at, line.kind))
    return lines + _ready(engine, now)


def _order_ids(engine: Engine, pks: set[int]) -> dict[int, str]:
    if not pks:
        return {}
    with engine.connect() as conn:
        found = conn.execute(select(ORDERS.c.id, ORDERS.c.order_id).where(ORDERS.c.id.in_(pks)))
        return {pk: order_id for pk, order_id in found}


def _ready(engine: Engine, now: datetime) -> list[PreviewLine]:
    """What is already in the log and the send job would take now (unleased or not)."""
    query = (
        select(OUTREACH, ORDERS.c.order_id.label("order_ref"))
        .join(ORDERS, ORDERS.c.id == OUTREACH.c.order_pk)
        .where(ready_to_send(now))
        .order_by(OUTREACH.c.due_at, OUTREACH.c.id)
    )
    with engine.connect() as conn:
        return [
            PreviewLine(
                order_id=row.order_ref,
                kind=row.kind,
                state=row.state,
                source="log",
                due_at=row.due_at,
                send_after=None,
                channel=row.channel,
                reason=row.reason,
                note=row.decision_note,
                outreach_id=row.id,
            )
            for row in conn.execute(query)
        ]
