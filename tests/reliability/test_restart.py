"""Start-up recovery: what a killed daemon had claimed is free again at once after the restart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from daemon.cli.run_cmd import recover_own_leftovers
from daemon.db import make_engine, session_scope, upgrade
from daemon.leases import OUTREACH, claim
from daemon.models import Order, Outreach, OutreachState

NOW = datetime(2026, 9, 1, 12, tzinfo=UTC)


def test_rows_claimed_but_not_yet_sending_are_released_at_start_up(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pw.db'}")
    upgrade(engine)
    with session_scope(engine) as s:
        order = s.execute(
            insert(Order)
            .values(order_id="A-1", country="DE", shipped_at=NOW, created_at=NOW, updated_at=NOW)
            .returning(Order.id)  # type: ignore[arg-type]
        ).scalar_one()
        for kind, state in (("tracking_update", "planned"), ("reassurance", "sending")):
            s.execute(insert(Outreach).values(order_pk=order, kind=kind, trigger="stage",
                      state=state, due_at=NOW, created_at=NOW, updated_at=NOW))  # fmt: skip
    with session_scope(engine) as s:
        leased = claim(s, OUTREACH, OUTREACH.c.due_at <= NOW, [OUTREACH.c.id], now=NOW,
                       owner="host-a", lease_seconds=300, limit=10)  # fmt: skip
    assert len(leased) == 2  # the daemon was killed right after claiming

    assert recover_own_leftovers(engine, "host-a") == 1
    with session_scope(engine) as s:
        rows = {r.kind: r for r in s.execute(select(OUTREACH)).all()}
        again = claim(s, OUTREACH, OUTREACH.c.state == OutreachState.PLANNED, [OUTREACH.c.id],
                      now=NOW, owner="host-a", lease_seconds=300, limit=10)  # fmt: skip
    assert rows["reassurance"].state == OutreachState.NEEDS_REVIEW
    assert rows["tracking_update"].lease_owner == "" and rows["tracking_update"].lease_until is None
    assert [row_id for row_id, _ in again] == [rows["tracking_update"].id]
    engine.dispose()
