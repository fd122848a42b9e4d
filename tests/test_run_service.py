"""`parcelwatch run` as a real subprocess: READY=1, SIGHUP with a good and a bad config, SIGTERM
in the middle of a send, exit 0, nothing sent twice."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.db import make_engine, upgrade
from daemon.importer import parse_file
from daemon.order_store import import_rows
from daemon.review import LogFilter, list_log
from daemon.sandbox import EMULATOR_ENV, sandbox_config, start_world
from tests.conftest import SHIPPED_CONFIG


def _recv_until(sock: socket.socket, wanted: bytes, deadline: float) -> list[bytes]:
    seen: list[bytes] = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except TimeoutError:
            break
        seen.append(data)
        if wanted in data:
            return seen
    raise AssertionError(f"never received {wanted!r}; got {seen!r}")


def test_run_ready_reload_and_clean_stop_mid_send(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    shipped = (now - timedelta(days=31)).date().isoformat()
    scenario = {
        "parcels": [
            {"number": n, "destination": "FR", "events": [
                {"at": (now - timedelta(days=29)).isoformat(), "status": "in_transit",
                 "description": "Departed from sorting center", "location": "SHENZHEN"},
                {"at": (now - timedelta(days=3)).isoformat(), "status": "in_transit",
                 "description": "Arrived in destination country", "location": "PARIS"},
            ]}
            for n in ("RR123456785CN", "LB528961554HK")
        ]
    }  # fmt: skip
    world = start_world(scenario, None, smtp_delay=1.5)
    proc: subprocess.Popen[str] | None = None
    notify_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    try:
        url = f"sqlite:///{tmp_path / 'pw.db'}"
        good = sandbox_config(
            SHIPPED_CONFIG.read_text(), world, url, log_level='"debug"', poll_interval_seconds=1,
            decide_interval_seconds=1, send_interval_seconds=1, stop_timeout_seconds=20,
            max_per_minute=6000,
        )  # fmt: skip
        # Quiet hours off, so the test does not depend on the time of day in France.
        good = good.replace("quiet_hours = { start = 21:00:00, end = 08:00:00 }",
                            "quiet_hours = { start = 00:00:00, end = 00:00:00 }")  # fmt: skip
        config = tmp_path / "config.toml"
        config.write_text(good)
        engine = make_engine(url)
        upgrade(engine)
        orders = tmp_path / "orders.csv"
        orders.write_text(
            "order_id,buyer_name,email,locale,country,ship_date,tracking_numbers\n"
            f"FR-1,Marie,marie@example.fr,fr,FR,{shipped},RR123456785CN\n"
            f"FR-2,Luc,luc@example.fr,fr,FR,{shipped},LB528961554HK\n"
        )
        import_rows(engine, parse_file(orders).rows, now)
        env = {**os.environ, **EMULATOR_ENV, "NOTIFY_SOCKET": str(notify_path)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--config", str(config), "run", "--log-format", "json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        _recv_until(notify, b"READY=1", time.monotonic() + 30)

        # A bad config on SIGHUP is rejected and the daemon keeps running on the old one.
        config.write_text(good.replace('tls = "none"', 'tls = "bogus"'))
        proc.send_signal(signal.SIGHUP)
        seen = _recv_until(notify, b"READY=1", time.monotonic() + 15)
        assert any(b"reload rejected" in s for s in seen)
        assert proc.poll() is None
        config.write_text(good)
        proc.send_signal(signal.SIGHUP)
        seen = _recv_until(notify, b"READY=1", time.monotonic() + 15)
        assert any(b"config reloaded" in s for s in seen)

        # SIGTERM while the SMTP server is still answering a message.
        if not world.smtp.handler.receiving.wait(30):
            proc.kill()
            raise AssertionError(f"nothing was sent: {proc.communicate()[0]}")
        proc.send_signal(signal.SIGTERM)
        _recv_until(notify, b"STOPPING=1", time.monotonic() + 10)
        code = proc.wait(timeout=30)
        output = proc.stdout.read() if proc.stdout else ""
        assert code == 0, output
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        notify.close()
        world.stop()

    assert "reload rejected" in output and "config reloaded" in output
    # `log_level = "debug"`: a line per decided log row, besides the pass's own line.
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(r["message"] == "decided" and r["level"] == "debug" for r in lines), output
    assert any(r["message"] == "decide pass" and r["level"] == "info" for r in lines), output
    log = list_log(engine, LogFilter())
    sent = [e for e in log if e.row.state == "sent"]
    assert sent, output
    assert not [e for e in log if e.row.state in ("sending", "needs_review")]  # the send finished
    mail = world.smtp.messages
    assert len(mail) == len(sent)
    assert all(n == 1 for n in Counter(m["Message-ID"] for m in mail).values())


def test_run_refuses_a_broken_config_or_a_missing_schema_before_starting(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from daemon.cli import app

    config = tmp_path / "config.toml"
    text = SHIPPED_CONFIG.read_text().replace(
        "sqlite:///parcelwatch.db", f"sqlite:///{tmp_path / 'pw.db'}"
    )
    config.write_text(text.replace("reassurance = 45,", "reassurance = 20,"))
    broken = CliRunner().invoke(app, ["--config", str(config), "run"])
    assert broken.exit_code == 2
    assert (
        "policy.countries.BR.stages.reassurance: 20 must be after tracking_update (30)"
        in broken.output
    )
    config.write_text(text)
    no_schema = CliRunner().invoke(app, ["--config", str(config), "run"])
    assert no_schema.exit_code == 3
    assert "run `parcelwatch db upgrade`" in no_schema.output
