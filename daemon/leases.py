"""Claiming work with leases, so two daemons never poll the same shipment or send the same message.

A claim sets `lease_owner`, `lease_until` and bumps `lease_token` in one statement. Every later change
to a claimed row is fenced with `WHERE id = ? AND lease_token = ?`: a daemon that was paused past its
lease (and whose row another daemon has since claimed) changes nothing and knows it lost the row.
On PostgreSQL the candidates are locked with `FOR UPDATE SKIP LOCKED`; SQLite has a single writer, so
its UPDATE ... RETURNING is already atomic.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_, select, tuple_, update
from sqlmodel import Session

from daemon.models import Outreach, Shipment

SHIPMENTS: Table = Shipment.__table__  # type: ignore[attr-defined]
OUTREACH: Table = Outreach.__table__  # type: ignore[attr-defined]


def _free(table: Table, now: datetime) -> ColumnElement[bool]:
    return or_(table.c.lease_until.is_(None), table.c.lease_until < now)


def claim(
    session: Session,
    table: Table,
    due: ColumnElement[bool],
    order_by: Sequence[Any],
    *,
    now: datetime,
    owner: str,
    lease_seconds: float,
    limit: int,
) -> list[tuple[int, int]]:
    """Lease up to `limit` due, unleased rows; returns (id, lease_token) pairs. Commit after."""
    candidates = (
        select(table.c.id).where(and_(due, _free(table, now))).order_by(*order_by).limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.execute(candidates).scalars())
    if not ids:
        return []
    result = session.execute(
        update(table)
        .where(table.c.id.in_(ids), _free(table, now))
        .values(
            lease_owner=owner,
            lease_until=now + timedelta(seconds=lease_seconds),
            lease_token=table.c.lease_token + 1,
        )
        .returning(table.c.id, table.c.lease_token)
    )
    return [(row.id, row.lease_token) for row in result.all()]


def fenced(table: Table, row_id: int, token: int) -> ColumnElement[bool]:
    """The WHERE clause of every write to a claimed row."""
    return and_(table.c.id == row_id, table.c.lease_token == token)


def fenced_all(table: Table, pairs: Sequence[tuple[int, int]]) -> ColumnElement[bool]:
    """`fenced()` for a batch in one statement: each row only with its own (id, token).

    The plain `id IN (...)` beside the row-value test is what the planner can look up: SQLite
    (3.40) answers `(id, lease_token) IN (VALUES ...)` alone with a scan of the whole table, once
    per batch, which at 100,000 shipments cost more than the carrier's answer. The row-value test
    still decides which rows are ours."""
    pairs = list(pairs)
    return and_(
        table.c.id.in_([row_id for row_id, _ in pairs]),
        tuple_(table.c.id, table.c.lease_token).in_(pairs),
    )


def release_values() -> dict[str, Any]:
    return {"lease_owner": "", "lease_until": None}
