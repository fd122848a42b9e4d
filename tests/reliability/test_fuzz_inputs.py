"""Bad input: orders, config and tracking numbers from hypothesis never crash parcelwatch; they are
accepted or refused with a message, and a refused order file changes nothing."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers.numbers import identify
from daemon.config import ConfigError, parse_config
from daemon.importer import validate_record
from tests.conftest import SHIPPED_CONFIG, Workspace

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
FIELDS = ["order_id", "buyer_name", "email", "phone", "channel", "locale", "timezone", "country",
          "ship_date", "promised_days", "product", "quantity", "tracking_numbers", "carrier",
          "source"]  # fmt: skip
NASTY = ["{{ 7*7 }}", "{% raw %}", "a\r\nBcc: x@y", "<b>x</b>", "\x00", "🙂", "٣", "ǅ", " ",
         "2026-02-30", "2026-10-01", "BR", "br", "XX", "QQ850419295BR", "-1", "0", "1e9",
         "Europe/Nowhere", "pt-BR", "email", "webhook", "a@b", "@", "x" * 300]  # fmt: skip
values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
    st.sampled_from(NASTY), st.lists(st.sampled_from(NASTY), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)  # fmt: skip
records = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(max_size=10)), values, max_size=12
)


@FUZZ
@given(records)
def test_any_order_record_is_a_row_or_named_problems(record: dict[str, Any]) -> None:
    row, errors, warnings = validate_record(1, record)
    assert (row is None) == bool(errors)
    for problem in errors + warnings:
        assert problem.line == 1 and problem.reason


@FUZZ
@given(st.text(max_size=40))
def test_any_tracking_number_is_classified(number: str) -> None:
    info = identify(number)
    assert info.format is not None


SHIPPED = tomllib.loads(SHIPPED_CONFIG.read_text())
PATHS = [("daemon", "poll_interval_seconds"), ("smtp", "port"), ("smtp", "tls"),
         ("store", "from_address"), ("store", "default_locale"), ("policy", "default"),
         ("carriers", "seventeentrack"), ("routing",), ("daemon", "database_url"),
         ("smtp", "max_per_minute"), ("policy", "countries")]  # fmt: skip


@FUZZ
@given(st.sampled_from(PATHS), values, st.booleans())
def test_any_config_change_is_accepted_or_refused_with_problems(
    path: tuple[str, ...], value: Any, drop: bool
) -> None:
    data = copy.deepcopy(SHIPPED)
    node = data
    for key in path[:-1]:
        node = node[key]
    if drop:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    try:
        parse_config(Path("fuzz.toml"), data)
    except ConfigError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)


def test_a_hostile_order_file_through_the_cli_is_refused_whole(upgraded: Workspace) -> None:
    bad = upgraded.root / "orders.csv"
    bad.write_text(
        "order_id,buyer_name,email,country,ship_date,tracking_numbers\n"
        "A-1,{{ 7*7 }},a@example.com,BR,2026-10-01,QQ850419295BR\n"
        'A-2,"x\r\nBcc: y@z",not-an-email,ZZ,2026-02-30,\n',
        encoding="utf-8",
    )
    result = upgraded.run("orders", "import", str(bad))
    assert result.exit_code == 1, result.output
    status = upgraded.run("status", "--json")
    assert json.loads(status.stdout)["open_orders"] == 0
    good = upgraded.run("orders", "import", str(bad), "--skip-invalid")
    assert "1 new orders" in good.output and "1 invalid rows skipped" in good.output
    shown = upgraded.run("orders", "show", "A-1", "--json")
    assert "{{ 7*7 }}" in shown.stdout


def test_a_time_zone_that_is_a_folder_or_too_long_is_refused_not_a_crash(tmp_path: Path) -> None:
    # Found by the fuzzing above: ZoneInfo("America") raises IsADirectoryError and a 300-character
    # name "File name too long", both OSError, which validation did not catch.
    for zone in ("America", "x" * 300):
        row, errors, _ = validate_record(1, {**GOOD, "timezone": zone})
        assert row is None and [e.field for e in errors] == ["timezone"]
        data = copy.deepcopy(SHIPPED)
        data["policy"]["countries"]["BR"]["timezone"] = zone
        try:
            parse_config(tmp_path / "c.toml", data)
        except ConfigError as exc:
            assert "timezone" in str(exc) or any("timezone" in str(p) for p in exc.problems)
        else:
            raise AssertionError("accepted a bad time zone")


GOOD = {"order_id": "A-1", "country": "BR", "ship_date": "2026-10-01",
        "tracking_numbers": "QQ850419295BR", "email": "a@example.com"}  # fmt: skip
