"""SIGKILL of the real `parcelwatch run` in the middle of an SMTP conversation, then a restart.

The message the killed daemon was sending is held for review by the restarted one (the server may
have accepted it), never sent again; everything else goes out once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from daemon.db import make_engine, upgrade
from daemon.importer import validate_record
from daemon.models import utcnow
from daemon.order_store import import_rows
from daemon.sandbox import EMULATOR_ENV, sandbox_config, start_world
from daemon.simulate import ReplayScenario
from tests.conftest import REPO, SHIPPED_CONFIG


def _run(config: Path, cwd: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **EMULATOR_ENV, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "daemon", "--config", str(config), "run", "--instance", "k"],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=(cwd / "daemon.log").open("ab"),
    )  # fmt: skip


def test_sigkill_mid_send_then_restart_holds_that_message_and_sends_the_rest_once(
    tmp_path: Path,
) -> None:
    scenario = ReplayScenario.load(REPO / "daemon" / "samples" / "demo_scenario.json")
    world = start_world(scenario.parcels, None, smtp_delay=30)  # the server sits on the first DATA
    try:
        url = f"sqlite:///{tmp_path / 'pw.db'}"
        config = tmp_path / "config.toml"
        text = sandbox_config(
            SHIPPED_CONFIG.read_text(),
            world,
            url,
            poll_interval_seconds=1,
            decide_interval_seconds=1,
            send_interval_seconds=1,
        )
        text = text.replace("max_per_minute = 120", "max_per_minute = 60000")
        text = text.replace(  # any hour of the day will do
            "quiet_hours = { start = 21:00:00, end = 08:00:00 }",
            "quiet_hours = { start = 23:59:00, end = 00:00:00 }",
        )
        config.write_text(text)
        engine = make_engine(url)
        upgrade(engine)
        rows = [validate_record(i, o)[0] for i, o in enumerate(scenario.orders, start=1)]
        import_rows(engine, [r for r in rows if r is not None], utcnow())
        engine.dispose()

        first = _run(config, tmp_path)
        assert world.smtp.handler.receiving.wait(60), (tmp_path / "daemon.log").read_text()[-2000:]
        first.send_signal(signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
        with sqlite3.connect(tmp_path / "pw.db") as db:
            sending = [r for (r,) in db.execute("SELECT id FROM outreach WHERE state = 'sending'")]
        assert len(sending) == 1  # killed mid-send

        world.smtp.handler.delay = 0
        second = _run(config, tmp_path)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            time.sleep(1)
            with sqlite3.connect(tmp_path / "pw.db") as db:
                left = db.execute(
                    "SELECT count(*) FROM outreach WHERE state IN ('planned', 'approved', 'sending')"
                    " AND due_at <= datetime('now')"
                ).fetchone()[0]
            if left == 0:
                break
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
        time.sleep(0.5)
        ids = Counter(str(m["Message-ID"]) for m in world.smtp.messages)
    finally:
        world.stop()
    with sqlite3.connect(tmp_path / "pw.db") as db:
        state = db.execute("SELECT state FROM outreach WHERE id = ?", (sending[0],)).fetchone()[0]
        sent = db.execute("SELECT count(*) FROM outreach WHERE state = 'sent'").fetchone()[0]
    assert state == "needs_review"
    assert sent >= 1 and ids and max(ids.values()) == 1, ids
