"""`parcelwatch sandbox`, `poll --once` and `track` from the command line, against the emulators."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from daemon.cli import app
from daemon.sandbox import EMULATOR_ENV


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[dict[str, object], Path]]:
    config = tmp_path / "config.toml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "sandbox", "--write-config", str(config)],
        stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        yield info, config
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def _cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), *args], env=EMULATOR_ENV)


def test_sandbox_serves_every_carrier_and_writes_a_working_config(
    sandbox: tuple[dict[str, object], Path],
) -> None:
    info, config = sandbox
    carriers = info["carriers"]
    assert isinstance(carriers, dict)
    assert set(carriers) == {"seventeentrack", "correios", "russianpost"}
    for url in carriers.values():
        origin = httpx.URL(url).copy_with(path="/_emulator/health")
        assert httpx.get(origin, timeout=5).status_code == 200
    result = CliRunner().invoke(app, ["--config", str(config), "config", "check"])
    assert result.exit_code == 0, result.output


def test_poll_once_against_the_sandbox(
    sandbox: tuple[dict[str, object], Path], tmp_path: Path
) -> None:
    _, config = sandbox
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,country,ship_date,tracking_numbers\n"
        "O-1,BR,2026-05-01,QQ850419295BR\n"
        "O-2,BR,2026-05-01,RR123456785CN\n"
        "O-3,US,2026-05-01,ZZ000000000XX1\n"
    )
    assert _cli(config, "db", "upgrade").exit_code == 0
    assert _cli(config, "orders", "import", str(orders)).exit_code == 0
    result = _cli(config, "poll", "--once")
    assert result.exit_code == 0, result.output
    assert "claimed 3 shipments, checked 3" in result.stdout
    assert "QQ850419295BR: not checked yet ->" in result.stdout
    again = _cli(config, "poll", "--once", "--json")
    assert json.loads(again.stdout)["claimed"] == 0  # nothing due yet
    shown = json.loads(_cli(config, "orders", "show", "O-1", "--json").stdout)
    shipment = shown["shipments"][0]
    assert shipment["adapter"] == "correios" and shipment["events"]


def test_track_one_number(sandbox: tuple[dict[str, object], Path]) -> None:
    _, config = sandbox
    result = _cli(config, "track", "QQ850419295BR")
    assert result.exit_code == 0, result.output
    assert "via correios" in result.stdout
    assert "status:" in result.stdout
    via_aggregator = _cli(config, "track", "QQ850419295BR", "--carrier", "seventeentrack", "--json")
    assert json.loads(via_aggregator.stdout)["result"] == "Tracked"
    unknown = _cli(config, "track", "RR000000005CN")
    assert unknown.exit_code == 4
    assert "NotFound" in unknown.stdout
