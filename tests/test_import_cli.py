"""`parcelwatch orders import` through the CLI, on a real SQLite file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlmodel import Session

from daemon.db import make_engine
from daemon.leases import SHIPMENTS
from daemon.models import Order, Shipment
from tests.conftest import Workspace, copy_fixture


def _counts(ws: Workspace) -> tuple[int, int]:
    engine = make_engine(ws.database_url)
    with Session(engine) as s:
        orders = s.execute(select(func.count()).select_from(Order)).scalar_one()
        shipments = s.execute(select(func.count()).select_from(Shipment)).scalar_one()
    engine.dispose()
    return orders, shipments


def _show(ws: Workspace, order_id: str) -> dict:  # type: ignore[type-arg]
    result = ws.run("orders", "show", order_id, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_good_csv_imports_every_row(upgraded: Workspace) -> None:
    fixture = copy_fixture("orders_good.csv", upgraded.root)
    result = upgraded.run("orders", "import", str(fixture))
    assert result.exit_code == 0, result.output
    assert "4 new orders" in result.stdout
    assert _counts(upgraded) == (4, 5)
    order = _show(upgraded, "AE-1002")
    assert order["order"]["country"] == "RU"
    assert [s["tracking_number"] for s in order["shipments"]] == [
        "RR123456785CN",
        "LP00612345678901",
    ]
    assert _show(upgraded, "SH-2001")["order"]["shipped_at"].startswith("2026-11-01 00:00:00")
    assert _show(upgraded, "AE-1001")["order"]["timezone"] == "America/Recife"


def test_one_bad_row_writes_nothing_and_names_the_row(upgraded: Workspace) -> None:
    fixture = copy_fixture("orders_one_bad.csv", upgraded.root)
    result = upgraded.run("orders", "import", str(fixture))
    assert result.exit_code == 1
    assert "line 3: email: 'ivan-at-example.ru' is not an email address" in result.stderr
    assert "nothing was imported" in result.stderr
    assert _counts(upgraded) == (0, 0)


def test_skip_invalid_imports_the_good_rows_and_lists_the_bad(upgraded: Workspace) -> None:
    fixture = copy_fixture("orders_one_bad.csv", upgraded.root)
    result = upgraded.run("orders", "import", str(fixture), "--skip-invalid")
    assert result.exit_code == 1  # still says something was wrong
    assert "2 new orders" in result.stdout
    assert "1 invalid rows skipped (lines 3)" in result.stdout
    assert _counts(upgraded) == (2, 2)


def test_importing_twice_is_a_no_op(upgraded: Workspace) -> None:
    fixture = copy_fixture("orders_good.csv", upgraded.root)
    assert upgraded.run("orders", "import", str(fixture)).exit_code == 0
    before = _show(upgraded, "AE-1001")
    result = upgraded.run("orders", "import", str(fixture))
    assert result.exit_code == 0
    assert "0 new orders, 0 updated, 4 unchanged" in result.stdout
    assert _counts(upgraded) == (4, 5)
    assert _show(upgraded, "AE-1001") == before


def test_a_changed_row_updates_its_order(upgraded: Workspace) -> None:
    fixture = copy_fixture("orders_good.csv", upgraded.root)
    assert upgraded.run("orders", "import", str(fixture)).exit_code == 0
    changed = fixture.read_text().replace("ana@example.com", "ana.new@example.com")
    changed = changed.replace("QQ850419295BR", "QH991577104BR")
    fixture.write_text(changed)
    result = upgraded.run("orders", "import", str(fixture))
    assert result.exit_code == 0, result.output
    assert "0 new orders, 1 updated, 3 unchanged" in result.stdout
    order = _show(upgraded, "AE-1001")
    assert order["order"]["email"] == "ana.new@example.com"
    states = {s["tracking_number"]: s["closed"] for s in order["shipments"]}
    # The replaced number stays on record (its history is dispute evidence) but is no longer watched.
    assert states == {"QQ850419295BR": True, "QH991577104BR": False}


def test_a_re_import_never_lifts_a_buyers_opt_out(upgraded: Workspace) -> None:
    fixture = copy_fixture("orders_good.csv", upgraded.root)
    assert upgraded.run("orders", "import", str(fixture)).exit_code == 0
    assert upgraded.run("orders", "opt-out", "AE-1001").exit_code == 0
    fixture.write_text(fixture.read_text().replace("Phone case", "Blue phone case"))
    result = upgraded.run("orders", "import", str(fixture))  # the file says "open"
    assert result.exit_code == 0, result.output
    order = _show(upgraded, "AE-1001")
    assert order["order"]["product"] == "Blue phone case"  # the rest of the row is taken
    assert order["order"]["state"] == "opted_out"


def test_jsonl_import(upgraded: Workspace) -> None:
    fixture = copy_fixture("orders.jsonl", upgraded.root)
    result = upgraded.run("orders", "import", str(fixture))
    assert result.exit_code == 0, result.output
    assert _counts(upgraded) == (2, 3)
    assert _show(upgraded, "J-1")["order"]["promised_days"] == 90


def test_mistyped_tracking_number_is_a_warning_not_a_rejection(
    upgraded: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "w.csv"
    path.write_text(
        "order_id,country,ship_date,tracking_numbers\nW-1,BR,2026-10-01,RR123456789CN\n"
    )
    result = upgraded.run("orders", "import", str(path))
    assert result.exit_code == 0
    assert "warning" in result.stderr and "check digit" in result.stderr
    assert _counts(upgraded) == (1, 1)


def test_every_bad_row_is_listed_with_line_and_field(upgraded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "order_id,country,ship_date,tracking_numbers,quantity,locale\n"
        "B-1,XX,2026-10-01,RR123456785CN,1,\n"
        "B-2,BR,01/10/2026,RR123456785CN,1,\n"
        "B-3,BR,2026-10-01,,1,\n"
        "B-4,BR,2026-10-01,RR123456785CN,zero,\n"
        "B-1,BR,2026-10-01,RR123456785CN,1,\n"
        "B-6,BR,2026-10-01,RR123456785CN,1,xx-YY\n"
    )
    result = upgraded.run("orders", "import", str(path))
    assert result.exit_code == 1
    for expected in (
        "line 2: country: 'XX' is not an ISO 3166-1",
        "line 3: ship_date: '01/10/2026' is not YYYY-MM-DD",
        "line 4: tracking_numbers: required",
        "line 5: quantity: 'zero' is not a whole number",
        "line 7: locale: 'xx-YY' is not a known locale",
        "6 rows are invalid",
    ):
        assert expected in result.stderr, expected
    assert _counts(upgraded) == (0, 0)


def test_duplicate_order_in_one_file_is_an_error(upgraded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(
        "order_id,country,ship_date,tracking_numbers\n"
        "D-1,BR,2026-10-01,RR123456785CN\n"
        "D-1,BR,2026-10-01,QQ850419295BR\n"
    )
    result = upgraded.run("orders", "import", str(path))
    assert result.exit_code == 1
    assert "line 3: order_id: 'D-1' already on line 2" in result.stderr


def test_unknown_column_is_refused_before_any_row(upgraded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text(
        "order_id,country,ship_date,tracking_numbers,emial\nX,BR,2026-10-01,RR123456785CN,a@b.c\n"
    )
    result = upgraded.run("orders", "import", str(path))
    assert result.exit_code == 1
    assert "line 1: unknown column(s) emial" in result.stderr


def test_bad_json_line_is_named(upgraded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"order_id": "A", "country": "BR", "ship_date": "2026-10-01", "tracking_numbers": "RR123456785CN"}\n{oops\n'
    )
    result = upgraded.run("orders", "import", str(path))
    assert result.exit_code == 1
    assert "line 2: (json): not valid JSON" in result.stderr
    assert _counts(upgraded) == (0, 0)


def test_buyer_name_with_crlf_is_flattened(upgraded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    path.write_text(
        json.dumps({"order_id": "N-1", "buyer_name": "Eve\r\nBcc: x@evil.test", "country": "BR",
                    "ship_date": "2026-10-01", "tracking_numbers": "RR123456785CN"}) + "\n"
    )  # fmt: skip
    assert upgraded.run("orders", "import", str(path)).exit_code == 0
    assert _show(upgraded, "N-1")["order"]["buyer_name"] == "Eve Bcc: x@evil.test"


def test_status_counts_open_shipments_and_stages(upgraded: Workspace) -> None:
    fixture = copy_fixture("orders_good.csv", upgraded.root)
    upgraded.run("orders", "import", str(fixture))
    result = upgraded.run("status", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["open_orders"] == 4
    assert summary["open_shipments"] == 5
    assert summary["by_country_status"]["RU"] == {"not_checked_yet": 2}
    assert summary["stale_tracking"] == {}
    human = upgraded.run("status")
    assert "4 open orders, 5 open shipments" in human.stdout
    assert "tracking stale" not in human.stdout


def test_status_tells_stale_tracking_apart(upgraded: Workspace) -> None:
    fixture = copy_fixture("orders_good.csv", upgraded.root)
    upgraded.run("orders", "import", str(fixture))
    engine = make_engine(upgraded.database_url)
    with engine.begin() as conn:
        first, second = conn.execute(select(SHIPMENTS.c.id).order_by(SHIPMENTS.c.id).limit(2))
        now = datetime.now(UTC)
        conn.execute(update(SHIPMENTS).where(SHIPMENTS.c.id == first.id)
                     .values(adapter="correios", last_polled_at=now - timedelta(days=3)))  # fmt: skip
        conn.execute(update(SHIPMENTS).where(SHIPMENTS.c.id == second.id)
                     .values(adapter="correios", last_polled_at=now - timedelta(hours=2)))  # fmt: skip
    summary = json.loads(upgraded.run("status", "--json").stdout)
    assert summary["stale_tracking"] == {"correios": 1}
    human = upgraded.run("status").stdout
    assert "tracking stale (no carrier answer for over a day): correios 1" in human


def test_orders_show_unknown_order(upgraded: Workspace) -> None:
    result = upgraded.run("orders", "show", "NOPE")
    assert result.exit_code == 4
    assert "no order 'NOPE'" in result.stderr


def _large_csv(path: Path, rows: int, last: str) -> Path:
    """`rows` good orders (several of the reader's batches and the writer's chunks), then `last`."""
    lines = ["order_id,country,ship_date,tracking_numbers"]
    lines += [f"L-{i:05d},BR,2026-10-01,RR123456785CN" for i in range(rows)]
    path.write_text("\n".join([*lines, last]) + "\n")
    return path


def test_a_bad_last_row_undoes_the_rows_already_stored(upgraded: Workspace, tmp_path: Path) -> None:
    # The file is stored while it is still being read: 2,500 rows are in the transaction when
    # the bad row turns up. Rolled back: the database is as it was.
    path = _large_csv(tmp_path / "late.csv", 2500, "L-LAST,BR,2026-10-01,x")
    result = upgraded.run("orders", "import", str(path))
    assert result.exit_code == 1
    assert "line 2502: tracking_numbers: 'x' is not 5-50 letters and digits" in result.stderr
    assert "1 of 2501 rows are invalid; nothing was imported" in result.stderr
    assert _counts(upgraded) == (0, 0)
    skipped = upgraded.run("orders", "import", str(path), "--skip-invalid")
    assert skipped.exit_code == 1
    assert "2500 rows taken: 2500 new orders" in skipped.stdout
    assert "1 invalid rows skipped (lines 2502)" in skipped.stdout
    assert _counts(upgraded) == (2500, 2500)


def test_a_file_that_cannot_be_read_is_named(upgraded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("order_id,country,ship_date,tracking_numbers\nJ-1,BR,2026-10-01,RR123456785CN,Jo\xe3o\n".encode("latin-1"))  # fmt: skip
    result = upgraded.run("orders", "import", str(path))
    assert result.exit_code == 1
    assert f"{path}: not UTF-8 text" in result.stderr
    missing = upgraded.run("orders", "import", str(tmp_path / "none.csv"))
    assert missing.exit_code == 1
    assert "none.csv: cannot read" in missing.stderr
    assert _counts(upgraded) == (0, 0)
