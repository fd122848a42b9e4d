"""`order_value` and `currency` through `parcelwatch orders import`, on a real SQLite file: what
the buyer paid becomes the refund offer's default full refund, so it must be read exactly."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from daemon.db import make_engine
from daemon.models import Order
from tests.conftest import Workspace

HEADER = "order_id,country,ship_date,tracking_numbers,order_value,currency\n"


def _stored(ws: Workspace) -> dict[str, tuple[Decimal | None, str]]:
    engine = make_engine(ws.database_url)
    with Session(engine) as s:
        found = {o.order_id: (o.value, o.currency) for o in s.execute(select(Order)).scalars()}
    engine.dispose()
    return found


def test_csv_value_with_point_or_comma_and_currency_upper_cased(
    upgraded: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "v.csv"
    path.write_text(
        HEADER + "V-1,BR,2026-10-01,RR123456785CN,12.50,brl\n"
        'V-2,BR,2026-10-01,RR123456785CN,"12,5",BRL\n'
        "V-3,BR,2026-10-01,RR123456785CN,,\n"
        "V-4,BR,2026-10-01,RR123456785CN,0,USD\n"
        "V-5,BR,2026-10-01,RR123456785CN,1000000,EUR\n"
    )
    result = upgraded.run("orders", "import", str(path))
    assert result.exit_code == 0, result.output
    assert _stored(upgraded) == {
        "V-1": (Decimal("12.50"), "BRL"),
        "V-2": (Decimal("12.50"), "BRL"),
        "V-3": (None, ""),
        "V-4": (Decimal("0.00"), "USD"),
        "V-5": (Decimal("1000000.00"), "EUR"),
    }
    shown = json.loads(upgraded.run("orders", "show", "V-2", "--json").stdout)
    assert (shown["order"]["value"], shown["order"]["currency"]) == ("12.50", "BRL")


def test_jsonl_value_as_a_number_or_text(upgraded: Workspace, tmp_path: Path) -> None:
    base = {"country": "RU", "ship_date": "2026-10-01", "tracking_numbers": "RR123456785CN"}
    path = tmp_path / "v.jsonl"
    path.write_text(
        json.dumps({"order_id": "J-1", "order_value": 19.9, "currency": "rub", **base})
        + "\n"
        + json.dumps({"order_id": "J-2", "order_value": "7,05", "currency": "EUR", **base})
        + "\n"
    )
    result = upgraded.run("orders", "import", str(path))
    assert result.exit_code == 0, result.output
    assert _stored(upgraded) == {"J-1": (Decimal("19.90"), "RUB"), "J-2": (Decimal("7.05"), "EUR")}


def test_reimport_changes_and_clears_the_value(upgraded: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text(HEADER + "R-1,BR,2026-10-01,RR123456785CN,10.00,BRL\n")
    assert upgraded.run("orders", "import", str(path)).exit_code == 0
    same = upgraded.run("orders", "import", str(path))
    assert "0 new orders, 0 updated, 1 unchanged" in same.stdout
    path.write_text(HEADER + 'R-1,BR,2026-10-01,RR123456785CN,"10,0",BRL\n')  # the same amount
    assert "0 updated, 1 unchanged" in upgraded.run("orders", "import", str(path)).stdout
    path.write_text(HEADER + "R-1,BR,2026-10-01,RR123456785CN,11.99,EUR\n")
    changed = upgraded.run("orders", "import", str(path))
    assert "0 new orders, 1 updated" in changed.stdout, changed.output
    assert _stored(upgraded) == {"R-1": (Decimal("11.99"), "EUR")}
    path.write_text(HEADER + "R-1,BR,2026-10-01,RR123456785CN,,\n")
    assert "1 updated" in upgraded.run("orders", "import", str(path)).stdout
    assert _stored(upgraded) == {"R-1": (None, "")}


def test_bad_values_and_currencies_are_named_by_line_and_field(
    upgraded: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "B-1,BR,2026-10-01,RR123456785CN,12.345,BRL\n"
        "B-2,BR,2026-10-01,RR123456785CN,-3,BRL\n"
        "B-3,BR,2026-10-01,RR123456785CN,abc,BRL\n"
        '"B-4",BR,2026-10-01,RR123456785CN,"1,234.50",BRL\n'
        "B-5,BR,2026-10-01,RR123456785CN,1000000.01,BRL\n"
        "B-6,BR,2026-10-01,RR123456785CN,12.50,\n"
        "B-7,BR,2026-10-01,RR123456785CN,12.50,XYZ\n"
        "B-8,BR,2026-10-01,RR123456785CN,12.50,R$\n"
        "B-9,BR,2026-10-01,RR123456785CN,1e3,BRL\n"
    )
    result = upgraded.run("orders", "import", str(path))
    assert result.exit_code == 1
    for expected in (
        "line 2: order_value: '12.345' has more than two decimals",
        "line 3: order_value: '-3' is not an amount",
        "line 4: order_value: 'abc' is not an amount",
        "line 5: order_value: '1,234.50' is not an amount",
        "line 6: order_value: '1000000.01' is over 1,000,000",
        "line 7: currency: required when order_value is given",
        "line 8: currency: 'XYZ' is not an ISO 4217 currency code",
        "line 9: currency: 'R$' is not an ISO 4217 currency code",
        "line 10: order_value: '1e3' is not an amount",
        "9 rows are invalid",
    ):
        assert expected in result.stderr, expected
    assert _stored(upgraded) == {}


def test_a_json_value_that_is_not_text_or_a_number_is_named(
    upgraded: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    base = {"country": "RU", "ship_date": "2026-10-01", "tracking_numbers": "RR123456785CN"}
    path.write_text(
        json.dumps({"order_id": "J-1", "order_value": [1], "currency": "EUR", **base}) + "\n"
        + json.dumps({"order_id": "J-2", "order_value": True, "currency": "EUR", **base}) + "\n"
    )  # fmt: skip
    result = upgraded.run("orders", "import", str(path))
    assert result.exit_code == 1
    assert "line 1: order_value: must be text" in result.stderr
    assert "line 2: order_value: must be text" in result.stderr
