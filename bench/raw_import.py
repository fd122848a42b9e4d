"""The import's raw limit: the same CSV into the same tables with nothing but csv and sqlite3.

No checking, no lookups (ids are given), no third-party imports: what reading the file and
inserting its orders and shipments costs on this machine, as a process of its own as the CLI is.
Same database settings as the daemon (WAL, synchronous NORMAL, foreign keys), one transaction.
Run by `bench.import_bench`: python bench/raw_import.py FILE.csv DATABASE
"""

from __future__ import annotations

import csv
import sqlite3
import sys
from datetime import UTC, datetime

_ORDER = (
    "INSERT INTO orders (id, order_id, source, buyer_name, email, phone, channel, locale, timezone,"
    " country, shipped_at, promised_days, product, quantity, state, state_reason,"
    " customs_paused_days, created_at, updated_at, decide_after)"
    " VALUES (?, ?, ?, ?, ?, '', '', ?, '', ?, ?, NULL, ?, ?, 'open', '', 0, ?, ?, ?)"
)
_SHIPMENT = (
    "INSERT INTO shipments (order_pk, tracking_number, carrier, adapter, status, raw_status,"
    " closed, poll_error, lease_owner, lease_token) VALUES (?, ?, '', '', '', '', 0, '', '', 0)"
)
_CHUNK = 500  # as the import writes


def main(path: str, database: str) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("BEGIN")
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        at = {name: i for i, name in enumerate(header)}
        i_id, i_src, i_name, i_email = at["order_id"], at["source"], at["buyer_name"], at["email"]
        i_loc, i_cty, i_day, i_num = (
            at["locale"],
            at["country"],
            at["ship_date"],
            at["tracking_numbers"],
        )
        i_prod, i_qty = at["product"], at["quantity"]
        pk = conn.execute("SELECT coalesce(max(id), 0) FROM orders").fetchone()[0]
        orders: list[tuple[object, ...]] = []
        shipments: list[tuple[object, ...]] = []
        for row in reader:
            pk += 1
            orders.append((pk, row[i_id], row[i_src], row[i_name], row[i_email], row[i_loc],
                           row[i_cty], f"{row[i_day]} 00:00:00.000000", row[i_prod],
                           int(row[i_qty]), now, now, now))  # fmt: skip
            shipments.append((pk, row[i_num]))
            if len(orders) == _CHUNK:
                conn.executemany(_ORDER, orders)
                conn.executemany(_SHIPMENT, shipments)
                orders, shipments = [], []
        conn.executemany(_ORDER, orders)
        conn.executemany(_SHIPMENT, shipments)
    conn.execute("COMMIT")
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
