"""Staff alerts from housekeeping: a failing carrier and refund offers left waiting, mailed once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlmodel import Session

from daemon.alarms import raise_alarm
from daemon.alerts import REMIND_AFTER, StaffAlerts
from daemon.config import load_config
from daemon.db import make_engine, session_scope, upgrade
from daemon.importer import parse_file
from daemon.models import Alarm, Order, Outreach
from daemon.order_store import import_rows
from daemon.sandbox import SmtpSink
from daemon.wiring import build_channels
from tests.conftest import SHIPPED_CONFIG

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


class Clock:
    now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def alerts(tmp_path: Path) -> Iterator[tuple[StaffAlerts, SmtpSink, Clock]]:
    sink = SmtpSink().start()
    url = f"sqlite:///{tmp_path / 'pw.db'}"
    text = SHIPPED_CONFIG.read_text().replace("sqlite:///parcelwatch.db", url)
    text = text.replace("port = 25", f"port = {sink.port}").replace(
        'staff_email = ""', 'staff_email = "ops@example.com"'
    )
    (tmp_path / "config.toml").write_text(text)
    config = load_config(tmp_path / "config.toml")
    engine = make_engine(url)
    upgrade(engine)
    orders = tmp_path / "o.csv"
    orders.write_text(
        "order_id,country,ship_date,tracking_numbers\nA,BR,2026-09-01,QQ850419295BR\n"
    )
    import_rows(engine, parse_file(orders).rows, NOW)
    clock = Clock()
    try:
        yield StaffAlerts(engine, config, clock, build_channels(config, clock)), sink, clock
    finally:
        sink.stop()


def test_a_carrier_alarm_is_mailed_to_staff_once(
    alerts: tuple[StaffAlerts, SmtpSink, Clock],
) -> None:
    staff, sink, _clock = alerts
    with session_scope(staff.engine) as s:
        raise_alarm(s, "carrier:seventeentrack", "seventeentrack: invalid access key", NOW)
    assert asyncio.run(staff.run_once()) == 1
    assert asyncio.run(staff.run_once()) == 0
    mail = sink.messages[0]
    assert mail["To"] == "Example Store <ops@example.com>"
    assert "seventeentrack" in mail["Subject"]
    assert "invalid access key" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_offers_waiting_too_long_raise_a_reminder_that_repeats_daily_and_clears(
    alerts: tuple[StaffAlerts, SmtpSink, Clock],
) -> None:
    staff, sink, clock = alerts
    with Session(staff.engine) as s:
        order = s.execute(select(Order)).scalar_one()
        s.execute(insert(Outreach).values(order_pk=order.id, kind="refund_offer", trigger="stage",
                                          state="awaiting_approval", needs_approval=True, due_at=NOW,
                                          created_at=NOW, updated_at=NOW))  # fmt: skip
        s.commit()
    assert asyncio.run(staff.run_once()) == 0  # not waiting long yet
    clock.now = NOW + timedelta(hours=5)
    assert asyncio.run(staff.run_once()) == 1
    assert "1" in sink.messages[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    clock.now += timedelta(hours=1)
    assert asyncio.run(staff.run_once()) == 0  # told already
    clock.now += REMIND_AFTER
    assert asyncio.run(staff.run_once()) == 1  # still waiting a day later: told again
    with Session(staff.engine) as s:
        s.execute(Outreach.__table__.update().values(state="approved"))  # type: ignore[attr-defined]
        s.commit()
    asyncio.run(staff.run_once())
    with Session(staff.engine) as s:
        alarm = s.execute(select(Alarm).where(Alarm.source == "approvals")).scalar_one()  # type: ignore[arg-type]
    assert alarm.cleared_at is not None
