"""Writing imported orders: new orders inserted, changed ones updated, unchanged ones left alone.

Everything happens in one transaction, so an import is all or nothing. The comparison is done in
memory against the stored orders named in the file, and new rows go out as driver-level executemany
(`daemon.bulk`): a 100k-row file takes seconds, not minutes. Re-importing the same file changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.engine import Dialect
from sqlmodel import col

from daemon.bulk import bulk_insert
from daemon.db import session_scope
from daemon.importer import OrderRow, in_batches
from daemon.models import Order, OrderState, Shipment

_ORDERS = Order.__table__  # type: ignore[attr-defined]
_SHIPMENTS = Shipment.__table__  # type: ignore[attr-defined]

# Order columns an import may set; anything else (state reasons, leases) belongs to the daemon.
IMPORTED_COLUMNS = (
    "source",
    "buyer_name",
    "email",
    "phone",
    "locale",
    "country",
    "shipped_at",
    "promised_days",
    "product",
    "quantity",
    "timezone",
    "channel",
    "state",
    "value",
    "currency",
)
_IMPORTED = [_ORDERS.c[name] for name in IMPORTED_COLUMNS]
# New orders go in as the parsed rows themselves: the OrderRow fields an import may set are
# stored, the others (line, tracking numbers, carrier) skipped.
_NEW_ORDER_COLUMNS = tuple(
    name if name in ("order_id", *IMPORTED_COLUMNS) else None for name in OrderRow._fields
)
_NOW_COLUMNS = ("created_at", "updated_at", "decide_after")  # the same "now" on every new order
# next_check_at is left NULL (no default): due at once, the poll job treats it as "never checked".
_NEW_SHIPMENT_COLUMNS = ("order_pk", "tracking_number", "carrier")
_CHUNK = 500  # keeps IN (...) lists and executemany batches well inside SQLite's limits
# Statements built once (IN lists as expanding parameters) and only the columns compared, as
# plain rows: ORM objects, or every column with its type processing, would dominate a re-import.
_STORED_ORDERS = select(_ORDERS.c.id, _ORDERS.c.order_id, *_IMPORTED).where(
    _ORDERS.c.order_id.in_(bindparam("keys", expanding=True))
)
_STORED_SHIPMENTS = select(
    _SHIPMENTS.c.id,
    _SHIPMENTS.c.order_pk,
    _SHIPMENTS.c.tracking_number,
    _SHIPMENTS.c.closed,
    _SHIPMENTS.c.poll_error,
).where(_SHIPMENTS.c.order_pk.in_(bindparam("keys", expanding=True)))
# Plain driver-level lookups by order number, `{}` taking the IN list's marks: their results are
# strings and integers, so they need none of Core's result processing.
_PROBE = "SELECT 1 FROM orders WHERE order_id IN ({})"
_ORDER_PKS = "SELECT order_id, id FROM orders WHERE order_id IN ({})"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int
    unchanged: int
    shipments_added: int
    shipments_closed: int


_imported = attrgetter(*IMPORTED_COLUMNS)


def import_rows(
    engine: Engine,
    rows: Iterable[OrderRow],
    now: datetime,
    progress: Progress | None = None,
    *,
    keep: Callable[[], bool] | None = None,
) -> ImportReport | None:
    """Store rows as orders and shipments in one transaction; returns what changed.

    `rows` are stored as they come, so they may still be being read. `keep`, if given, is asked
    once the last row is stored: when it says no (the file turned out to have a bad row), the
    transaction is rolled back and None returned: nothing was written.
    """
    try:
        return _import_rows(engine, rows, now, progress, keep)
    except _Discarded:
        return None


class _Discarded(Exception):
    """Raised inside the import's transaction to roll it back."""


def _import_rows(
    engine: Engine,
    rows: Iterable[OrderRow],
    now: datetime,
    progress: Progress | None,
    keep: Callable[[], bool] | None,
) -> ImportReport:
    created = updated = unchanged = added = closed = 0
    with session_scope(engine) as session:
        connection = session.connection()
        dialect = connection.dialect
        new_orders = bulk_insert(dialect, _ORDERS, _NEW_ORDER_COLUMNS, same=_NOW_COLUMNS)
        new_shipments = bulk_insert(dialect, _SHIPMENTS, _NEW_SHIPMENT_COLUMNS)
        if dialect.name == "postgresql":
            # The tables grow by the whole file inside this one transaction. The driver prepares
            # a statement run five times, and PostgreSQL may then keep one generic plan made
            # while the table was small (a sequential scan) for every later chunk: at 100,000
            # rows the lookups took two minutes. Planned for their own parameters, seconds.
            connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        existing: dict[str, Any] = {}
        for chunk in in_batches(rows, _CHUNK):
            keys = [row.order_id for row in chunk]
            # Unless the last chunk had stored orders, a plain driver-level probe first: a first
            # import finds nothing and skips the typed comparison query (whose IN list is
            # rendered anew on every call).
            existing = (
                {
                    row.order_id: row
                    for row in connection.execute(_STORED_ORDERS, {"keys": keys}).all()
                }
                if existing
                or connection.exec_driver_sql(
                    _sql_in(dialect, _PROBE, len(keys)), tuple(keys)
                ).first()
                else {}
            )
            numbers: dict[int, dict[str, Any]] = {}
            if existing:
                for s in connection.execute(
                    _STORED_SHIPMENTS, {"keys": [o.id for o in existing.values()]}
                ).all():
                    numbers.setdefault(s.order_pk, {})[s.tracking_number] = s

            fresh = [row for row in chunk if row.order_id not in existing]
            if fresh:
                new_orders.run(connection, fresh, (now, now, now))
                fresh_keys = [row.order_id for row in fresh]
                new_pks: dict[str, int] = dict(
                    connection.exec_driver_sql(
                        _sql_in(dialect, _ORDER_PKS, len(fresh_keys)), tuple(fresh_keys)
                    ).all()
                )
                shipments = [
                    (new_pks[row.order_id], number, row.carrier)
                    for row in fresh
                    for number in row.tracking_numbers
                ]
                new_shipments.run(connection, shipments)
                created += len(fresh)
                added += len(shipments)

            for row in chunk:
                order = existing.get(row.order_id)
                if order is None:
                    continue
                assert order.id is not None
                stored = tuple(order)[2:]  # the IMPORTED_COLUMNS, as selected
                values = _imported(row)
                changed = (
                    {}
                    if stored == values
                    else {
                        k: v
                        for k, old, v in zip(IMPORTED_COLUMNS, stored, values, strict=True)
                        if old != v
                    }
                )
                if order.state == OrderState.OPTED_OUT and changed.get("state") == OrderState.OPEN:
                    # An import never lifts a buyer's opt-out (a file re-exported from the store
                    # says "open" for every order it has not closed); only a person can.
                    del changed["state"]
                have = numbers.get(order.id, {})
                new_numbers = [n for n in row.tracking_numbers if n not in have]
                reopened = [
                    s
                    for n, s in have.items()
                    if n in row.tracking_numbers and s.closed and s.poll_error == REMOVED
                ]
                dropped = [
                    s for n, s in have.items() if n not in row.tracking_numbers and not s.closed
                ]
                if not changed and not new_numbers and not dropped and not reopened:
                    unchanged += 1
                    continue
                session.execute(
                    update(Order)
                    .where(col(Order.id) == order.id)
                    .values(**changed, updated_at=now, decide_after=now)
                )
                if new_numbers:
                    connection.execute(
                        insert(_SHIPMENTS),
                        [_shipment(order.id, n, row.carrier) for n in new_numbers],
                    )
                    added += len(new_numbers)
                for shipment in dropped:
                    # A replaced number stops being watched but keeps its history for disputes.
                    session.execute(
                        update(Shipment)
                        .where(col(Shipment.id) == shipment.id)
                        .values(closed=True, poll_error=REMOVED, next_check_at=None)
                    )
                    closed += 1
                for shipment in reopened:
                    session.execute(
                        update(Shipment)
                        .where(col(Shipment.id) == shipment.id)
                        .values(closed=False, poll_error="", next_check_at=now)
                    )
                updated += 1
            if progress is not None:
                progress(len(chunk))
        if keep is not None and not keep():
            raise _Discarded
    return ImportReport(created, updated, unchanged, added, closed)


REMOVED = "removed from the order by an import"


@lru_cache(maxsize=16)
def _sql_in(dialect: Dialect, template: str, count: int) -> str:
    """`template` with an IN list of `count` marks in the driver's style, built once per size."""
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    return template.format(", ".join([mark] * count))


def _shipment(order_pk: int, number: str, carrier: str) -> dict[str, Any]:
    return {
        "order_pk": order_pk,
        "tracking_number": number,
        "carrier": carrier,
        "next_check_at": None,  # due at once: the poll job treats NULL as "never checked"
    }
