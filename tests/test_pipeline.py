"""End to end on loopback: emulated carriers -> poll -> decide -> send -> a real SMTP sink.

A virtual clock moves one day at a time through 100 days; the carriers' emulators reveal their
scenario events as that clock passes them, and the same three jobs the daemon runs do the work.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.clock import VirtualClock
from daemon.config import load_config
from daemon.db import make_engine, upgrade
from daemon.importer import parse_file
from daemon.order_store import import_rows
from daemon.review import LogFilter, approvable_ids, approve, list_log
from daemon.sandbox import EMULATOR_ENV, sandbox_config, start_world
from daemon.wiring import build_runtime
from messages.remedies import Remedies
from tests.conftest import SHIPPED_CONFIG

SHIP = datetime(2026, 9, 1, tzinfo=UTC)


def day(n: float, hour: int = 12) -> str:
    return (SHIP + timedelta(days=n, hours=hour)).isoformat()


SCENARIO = {
    "parcels": [
        {  # Brazil via Correios: customs, then delivered on day 50
            "number": "QQ850419295BR",
            "destination": "BR",
            "events": [
                {"at": day(2), "status": "in_transit", "description": "Objeto postado", "location": "SHENZHEN"},
                {"at": day(18), "status": "in_transit", "description": "Objeto em trânsito", "location": "CURITIBA"},
                {"at": day(28), "status": "customs_hold", "description": "Encaminhado para fiscalização aduaneira", "location": "CURITIBA"},
                {"at": day(38), "status": "in_transit", "description": "Objeto em trânsito", "location": "SAO PAULO"},
                {"at": day(50), "status": "delivered", "description": "Objeto entregue ao destinatário", "location": "SAO PAULO"},
            ],
        },
        {  # Russia via the aggregator: moves, then silence (lost)
            "number": "RR123456785CN",
            "destination": "RU",
            "events": [
                {"at": day(2), "status": "in_transit", "description": "Departed from sorting center", "location": "SHENZHEN", "leg": "first_mile"},
                {"at": day(12), "status": "in_transit", "description": "Arrived at destination country", "location": "MOSCOW"},
            ],
        },
    ]
}  # fmt: skip

ORDERS = """order_id,buyer_name,email,locale,country,ship_date,tracking_numbers,product
BR-1,Ana Souza,ana@example.com,pt-BR,BR,2026-09-01,QQ850419295BR,Phone case
RU-1,Ivan Petrov,ivan@example.ru,ru,RU,2026-09-01,RR123456785CN,USB cable
"""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in EMULATOR_ENV.items():
        monkeypatch.setenv(key, value)


def test_a_hundred_days_on_loopback(tmp_path: Path, env: None) -> None:
    clock = VirtualClock(SHIP)
    world = start_world(SCENARIO, SHIP, tmp_path / "mail")
    try:
        config_path = tmp_path / "config.toml"
        url = f"sqlite:///{tmp_path / 'pw.db'}"
        config_path.write_text(
            sandbox_config(
                SHIPPED_CONFIG.read_text(),
                world,
                url,
                max_per_minute=100000,
                review_url='"https://shop.example/review/{order_id}"',
            )
        )
        config = load_config(config_path)
        engine = make_engine(url)
        upgrade(engine)
        orders = tmp_path / "orders.csv"
        orders.write_text(ORDERS)
        import_rows(engine, parse_file(orders).rows, SHIP)
        runtime = build_runtime(config, engine, clock, owner="test", carrier_limits=False)

        async def run() -> None:
            for n in range(0, 101):
                clock.set(SHIP + timedelta(days=n, hours=12))
                world.set_clock(clock())
                await runtime.poller.run_once()
                await runtime.decider.run_once()
                for row_id in approvable_ids(engine, LogFilter()):  # staff approve every offer
                    approve(engine, [row_id], "test-lead", clock(), remedies=Remedies(reship=True))
                await runtime.sender.run_once()
            await runtime.close()

        asyncio.run(run())
    finally:
        world.stop()

    log = list_log(engine, LogFilter())
    by_order = {
        oid: [(e.row.kind, e.row.state) for e in log if e.order_id == oid]
        for oid in ("BR-1", "RU-1")
    }
    # Brazil: tracking update on 30 (while in customs), reassurance 45, delivered at 50: no refund offer.
    br = dict(by_order["BR-1"])
    assert br["tracking_update"] == "sent"
    assert br["reassurance"] == "sent"
    assert br["customs_hold"] == "sent"
    assert br["delivered"] == "sent"
    assert br["review_request"] == "sent"
    assert "refund_offer" not in br
    # Russia: silent after day 12, so stalled brings the reassurance forward; refund offer at 75.
    ru = dict(by_order["RU-1"])
    assert ru["refund_offer"] == "sent"
    assert "delivered" not in ru

    mail = world.smtp.messages
    sent = [e for e in log if e.row.state == "sent" and e.row.channel == "email"]
    assert len(mail) == len(sent)  # every sent row reached the sink exactly once
    ids = Counter(m["Message-ID"] for m in mail)
    assert all(count == 1 for count in ids.values())
    to_ana = [m for m in mail if "ana@example.com" in m["To"]]
    assert all("BR-1" in m.get_body(("plain",)).get_content() for m in to_ana)  # type: ignore[union-attr]
    portuguese = [m for m in to_ana if "Olá" in m.get_body(("plain",)).get_content()]  # type: ignore[union-attr]
    assert portuguese, "Brazilian buyer gets Portuguese"
    bodies = [m.get_body(("plain",)).get_content() for m in to_ana]  # type: ignore[union-attr]
    assert not any(
        "in transit" in b or "in_transit" in b for b in bodies
    )  # no English status words
    assert len(list((tmp_path / "mail").glob("*.eml"))) == len(mail)
    events = os.path.getsize(tmp_path / "pw.db")
    assert events > 0
