"""Secrets never reach a log line, an error message, an alarm, a log row or `status`.

The real daemon (`parcelwatch run`) runs against the emulators and an SMTP peer with every secret
set in its environment to a value the carriers reject, so every failure path (refused keys, refused
SMTP login, unreachable webhook) speaks; then every line it wrote and every text column it stored is
searched for each secret value.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import insert

from daemon.db import make_engine, upgrade
from daemon.importer import validate_record
from daemon.models import Outreach, utcnow
from daemon.order_store import import_rows
from daemon.sandbox import sandbox_config, start_world
from daemon.simulate import ReplayScenario
from tests.conftest import REPO, SHIPPED_CONFIG, Workspace

SECRETS = {
    "PARCELWATCH_17TRACK_KEY": "sk17-Zq8vN3pXw",
    "PARCELWATCH_CORREIOS_USER": "corr-user-Yh2mK",
    "PARCELWATCH_CORREIOS_ACCESS_CODE": "corr-code-Lp9tR4",
    "PARCELWATCH_RUSSIANPOST_LOGIN": "rp-login-Bv7cX",
    "PARCELWATCH_RUSSIANPOST_PASSWORD": "rp-pass-Qw5eJ8",
    "PARCELWATCH_SMTP_PASSWORD": "smtp-pass-Hk3sD6",
    "PARCELWATCH_WEBHOOK_SECRET": "hook-secret-Mn4gF1",
}


def test_no_secret_in_any_log_line_error_or_stored_text(tmp_path: Path) -> None:
    scenario = ReplayScenario.load(REPO / "daemon" / "samples" / "demo_scenario.json")
    world = start_world(scenario.parcels, None)
    # 17TRACK takes the secret key (the success path must not log it); the others refuse theirs.
    world.carriers.emulators["seventeentrack"].token = SECRETS["PARCELWATCH_17TRACK_KEY"]  # type: ignore[attr-defined]
    try:
        url = f"sqlite:///{tmp_path / 'pw.db'}"
        text = sandbox_config(SHIPPED_CONFIG.read_text(), world, url, poll_interval_seconds=1,
                              decide_interval_seconds=1, send_interval_seconds=1,
                              housekeeping_interval_seconds=1, log_format='"json"')  # fmt: skip
        text = text.replace('username = ""', 'username = "shop"')
        text = text.replace(  # no quiet hours: the test must not depend on the hour it runs at
            "quiet_hours = { start = 21:00:00, end = 08:00:00 }",
            "quiet_hours = { start = 00:00:00, end = 00:00:00 }",
        )
        text = text.replace('[webhook]\nurl = ""', '[webhook]\nurl = "http://127.0.0.1:9/hook"')
        config = tmp_path / "config.toml"
        config.write_text(text)
        engine = make_engine(url)
        upgrade(engine)
        orders = [
            {**o, "channel": "webhook"} if n % 2 else o for n, o in enumerate(scenario.orders)
        ]
        rows = [validate_record(i, o)[0] for i, o in enumerate(orders, start=1)]
        now = utcnow()
        import_rows(engine, [r for r in rows if r is not None], now)
        # A message due now by email, whatever the hour and whatever the policy makes of a
        # backlog first seen today: the SMTP login is attempted, fails, and must say why
        # without the password.
        with engine.begin() as conn:
            order_pk = conn.exec_driver_sql(
                "SELECT id FROM orders WHERE order_id = 'US-1008'"
            ).scalar_one()
            conn.execute(
                insert(Outreach).values(
                    order_pk=order_pk, kind="delivered", trigger="order", audience="buyer",
                    channel="email", state="planned", reason="test", due_at=now,
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
        engine.dispose()
        env = {**os.environ, **SECRETS, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--config", str(config), "run", "--instance", "t"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        time.sleep(8)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=90)
    finally:
        world.stop()
    lines = output.decode("utf-8", "replace").splitlines()
    assert len(lines) > 5, lines
    assert any("alarm" in line for line in lines), lines[:20]  # the refusals were logged
    with sqlite3.connect(tmp_path / "pw.db") as db:
        stored = [
            str(value)
            for table in ("alarms", "outreach", "shipments", "orders", "tracking_events")
            for row in db.execute(f"SELECT * FROM {table}")
            for value in row
        ]
        errors = [
            e for (e,) in db.execute("SELECT last_error FROM outreach WHERE last_error != ''")
        ]
    assert any(e.startswith("login:") for e in errors)  # the SMTP login failed and said why
    assert any("ConnectError" in e for e in errors)  # so did the webhook
    ws = Workspace(tmp_path, config, url)
    shown = ws.run("status").stdout + ws.run("status", "--json").stdout
    shown += ws.run("log", "--format", "json").stdout + ws.run("config", "check").output
    for name, value in SECRETS.items():
        assert not [line for line in lines if value in line], name
        assert not [s for s in stored if value in s], name
        assert value not in shown, name
    json.dumps(lines)  # every line was text
