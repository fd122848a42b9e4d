"""A seller's first run on a real backlog: calm, true, and previewable before it starts.

Orders imported today whose parcels already have weeks of tracking: what happened before the
order was first seen is logged as missed, not sent (a delivered notice weeks late, a customs hold
long over); what is still true and asks the buyer to act is told; each buyer gets at most one
message; and `parcelwatch preview` shows all of it beforehand without writing or sending.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update
from sqlmodel import Session
from typer.testing import CliRunner

from daemon.cli import app
from daemon.clock import VirtualClock
from daemon.config import Config, load_config
from daemon.db import make_engine, upgrade
from daemon.decide import Decider
from daemon.importer import parse_file
from daemon.models import Order, Outreach, Shipment, TrackingEvent
from daemon.order_store import import_rows
from daemon.sandbox import SmtpSink
from daemon.send import Sender
from daemon.wiring import build_channels
from tests.conftest import SHIPPED_CONFIG

NOW = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)  # midday in Sao Paulo and Moscow, morning in NY

BACKLOG = """order_id,source,buyer_name,email,locale,country,ship_date,tracking_numbers
BR-OLD,aliexpress,Ana,ana@example.com,pt-BR,BR,2026-09-01,QQ850419295BR
RU-HELD,aliexpress,Ivan,ivan@example.ru,ru,RU,2026-09-20,RR123456785CN
US-PICKUP,shopify,Jo,jo@example.com,en-US,US,2026-10-01,LB528961554HK
FR-NEW,shopify,Marie,marie@example.fr,fr,FR,2026-10-10,RR987654321CN
"""
# (number, days before NOW, status, text)
HISTORY = [
    ("QQ850419295BR", 60, "in_transit", "Objeto postado"),
    ("QQ850419295BR", 20, "delivered", "Objeto entregue ao destinatário"),
    ("RR123456785CN", 45, "in_transit", "Принято в отделении связи"),
    ("RR123456785CN", 30, "customs_hold", "Задержано таможней"),
    ("RR123456785CN", 20, "in_transit", "Выпущено таможней"),
    ("RR123456785CN", 0.2, "in_transit", "Покинуло сортировочный центр"),
    ("LB528961554HK", 35, "in_transit", "Accepted"),
    ("LB528961554HK", 3, "available_for_pickup", "Available for pickup"),
    ("RR987654321CN", 28, "in_transit", "Accepted"),
    ("RR987654321CN", 0.5, "delivered", "Livré"),
]


class Store:
    """A seller's database right after importing a backlog, with the carriers' history polled."""

    def __init__(self, tmp: Path, sink: SmtpSink) -> None:
        url = f"sqlite:///{tmp / 'pw.db'}"
        text = SHIPPED_CONFIG.read_text().replace("sqlite:///parcelwatch.db", url)
        text = text.replace("port = 25", f"port = {sink.port}")
        text = text.replace("max_per_minute = 120", "max_per_minute = 60000")
        self.config_path = tmp / "config.toml"
        self.config_path.write_text(text)
        self.config: Config = load_config(self.config_path)
        self.engine = make_engine(url)
        upgrade(self.engine)
        orders = tmp / "backlog.csv"
        orders.write_text(BACKLOG)
        import_rows(self.engine, parse_file(orders).rows, NOW)
        self.clock = VirtualClock(NOW)
        with Session(self.engine) as s:
            for number, ago, status, text in HISTORY:
                at = NOW - timedelta(days=ago)
                ship = s.execute(select(Shipment).where(Shipment.tracking_number == number)).scalar_one()  # type: ignore[arg-type]  # fmt: skip
                s.execute(insert(TrackingEvent).values(shipment_id=ship.id, event_key=f"{ago}-{status}",
                                                       occurred_at=at, status=status, description=text,
                                                       recorded_at=NOW))  # fmt: skip
                s.execute(update(Shipment).where(Shipment.id == ship.id).values(status=status,
                          first_polled_at=NOW, last_polled_at=NOW))  # type: ignore[arg-type]  # fmt: skip
            s.execute(update(Order).values(decide_after=NOW))
            s.commit()

    def outreach(self) -> list[tuple[str, str, str]]:
        with Session(self.engine) as s:
            rows = s.execute(
                select(Order.order_id, Outreach.kind, Outreach.state)
                .join(Order, Order.id == Outreach.order_pk)  # type: ignore[arg-type]
                .order_by(Order.order_id, Outreach.kind)
            ).all()
            return [(str(a), str(b), str(c)) for a, b, c in rows]

    def run_jobs(self) -> None:
        channels = build_channels(self.config, self.clock)
        asyncio.run(Decider(self.engine, self.config, self.clock).run_once())
        asyncio.run(Sender(self.engine, self.config, self.clock, channels, owner="t").run_once())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    sink = SmtpSink().start()
    store = Store(tmp_path, sink)
    store.sink = sink  # type: ignore[attr-defined]
    try:
        yield store
    finally:
        sink.stop()
        store.engine.dispose()


def test_preview_shows_the_first_pass_and_writes_nothing(store: Store) -> None:
    result = CliRunner().invoke(
        app, ["--config", str(store.config_path), "preview", "--json"], env={"TZ": "UTC"}
    )
    assert result.exit_code == 0, result.output
    lines = {(line["order_id"], line["kind"]): line for line in json.loads(result.stdout)}
    assert lines[("BR-OLD", "delivered")]["state"] == "skipped"
    assert "missed" in lines[("BR-OLD", "delivered")]["reason"]
    assert lines[("RU-HELD", "customs_hold")]["state"] == "skipped"
    assert lines[("US-PICKUP", "ready_for_pickup")]["state"] == "planned"
    assert lines[("FR-NEW", "delivered")]["state"] == "planned"
    assert store.outreach() == []  # nothing written
    with Session(store.engine) as s:  # and no wake time moved
        assert s.execute(select(func.count()).where(Order.decide_after == NOW)).scalar_one() == 4  # type: ignore[arg-type]


def test_a_backlogs_first_run_sends_no_missed_event_and_one_message_per_buyer(
    store: Store,
) -> None:
    store.run_jobs()
    sink: SmtpSink = store.sink  # type: ignore[attr-defined]
    received = sorted((m["To"], m["Subject"]) for m in sink.messages)
    to = [address for address, _ in received]
    assert not [a for a in to if "ana@" in a]  # delivered 20 days before the import: missed
    assert len([a for a in to if "ivan@" in a]) == 1  # the stage due now, not the old hold
    assert len([a for a in to if "jo@" in a]) == 1  # waiting at the pickup point: told
    assert len([a for a in to if "marie@" in a]) == 1  # delivered within the grace: confirmed
    assert len(to) == len(set(to))
    states = {(order, kind): state for order, kind, state in store.outreach()}
    assert states[("BR-OLD", "delivered")] == "skipped"
    assert states[("RU-HELD", "customs_hold")] == "skipped"  # long over: missed
    assert states[("RU-HELD", "reassurance")] == "sent"  # day 51 of 90, on its way: true
    assert states[("US-PICKUP", "reassurance")] == "held"  # not "on its way" at the pickup point
