"""The poll job on a real SQLite file against the emulators: events stored once, alarms, fencing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from carriers.base import Adapter, RateLimit, Tracked, TrackEvent, TrackResult
from carriers.status import Status
from daemon.clock import VirtualClock
from daemon.config import load_config
from daemon.db import make_engine, session_scope, upgrade
from daemon.importer import parse_file
from daemon.leases import SHIPMENTS, claim, fenced
from daemon.models import Alarm, Order, Shipment, TrackingEvent
from daemon.order_store import import_rows
from daemon.poll import Poller, next_check
from daemon.sandbox import EMULATOR_ENV, World, sandbox_config, start_world
from daemon.wiring import build_runtime
from tests.conftest import SHIPPED_CONFIG

T0 = datetime(2026, 10, 1, tzinfo=UTC)
SCENARIO = {
    "parcels": [
        {"number": n, "destination": dest, "events": [
            {"at": (T0 + timedelta(days=1)).isoformat(), "status": "in_transit", "description": "Accepted", "location": "SHENZHEN", "leg": "first_mile"},
            {"at": (T0 + timedelta(days=9)).isoformat(), "status": "customs_hold", "description": "Held by customs", "location": dest},
            {"at": (T0 + timedelta(days=14)).isoformat(), "status": "delivered", "description": "Delivered", "location": dest},
        ]}
        for n, dest in (("QQ850419295BR", "BR"), ("RR123456785CN", "US"))
    ]
}  # fmt: skip


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in EMULATOR_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def setup(tmp_path: Path, env: None) -> Iterator[tuple[World, object, VirtualClock]]:
    world = start_world(SCENARIO, T0)
    url = f"sqlite:///{tmp_path / 'pw.db'}"
    (tmp_path / "config.toml").write_text(sandbox_config(SHIPPED_CONFIG.read_text(), world, url))
    engine = make_engine(url)
    upgrade(engine)
    orders = tmp_path / "o.csv"
    orders.write_text(
        "order_id,country,ship_date,tracking_numbers\nB,BR,2026-10-01,QQ850419295BR\nU,US,2026-10-01,RR123456785CN\n"
    )
    import_rows(engine, parse_file(orders).rows, T0)
    clock = VirtualClock(T0)
    runtime = build_runtime(
        load_config(tmp_path / "config.toml"), engine, clock, owner="a", carrier_limits=False
    )
    try:
        yield world, runtime, clock
    finally:
        asyncio.run(runtime.close())  # type: ignore[attr-defined]
        world.stop()


def _events(engine: object) -> int:
    with Session(engine) as s:  # type: ignore[call-overload]
        return int(s.execute(select(func.count()).select_from(TrackingEvent)).scalar_one())


def _due_now(engine: object) -> None:
    with Session(engine) as s:  # type: ignore[call-overload]
        s.execute(update(Shipment).values(next_check_at=None))
        s.commit()


def test_the_same_history_polled_again_and_again_is_stored_once(
    setup: tuple[World, object, VirtualClock],
) -> None:
    world, runtime, clock = setup
    poller = runtime.poller  # type: ignore[attr-defined]
    clock.set(T0 + timedelta(days=10))
    world.set_clock(clock())
    report = asyncio.run(poller.run_once())
    assert report.checked == 2 and report.new_events >= 4
    stored = _events(poller.engine)
    for _ in range(5):
        _due_now(poller.engine)
        again = asyncio.run(poller.run_once())
        assert again.new_events == 0
    assert _events(poller.engine) == stored
    with Session(poller.engine) as s:
        ships = {x.tracking_number: x for x in s.execute(select(Shipment)).scalars()}
        orders = list(s.execute(select(Order)).scalars())
    assert (
        ships["QQ850419295BR"].status == Status.CUSTOMS_HOLD
        and ships["QQ850419295BR"].adapter == "correios"
    )
    assert ships["RR123456785CN"].adapter == "seventeentrack"
    assert all(o.decide_after is not None for o in orders)  # new tracking wakes the decide job
    assert ships["QQ850419295BR"].next_check_at == clock() + timedelta(hours=12)
    assert not any(x.lease_owner for x in ships.values())


def test_delivery_closes_the_shipment_and_stops_polling(
    setup: tuple[World, object, VirtualClock],
) -> None:
    world, runtime, clock = setup
    clock.set(T0 + timedelta(days=15))
    world.set_clock(clock())
    asyncio.run(runtime.poller.run_once())  # type: ignore[attr-defined]
    clock.set(T0 + timedelta(days=30))
    later = asyncio.run(runtime.poller.run_once())  # type: ignore[attr-defined]
    assert later.claimed == 0
    with Session(runtime.poller.engine) as s:  # type: ignore[attr-defined]
        ships = list(s.execute(select(Shipment)).scalars())
    assert all(x.closed and x.status == Status.DELIVERED and x.next_check_at is None for x in ships)
    assert all(x.delivered_at == T0 + timedelta(days=14) for x in ships)


def test_a_revoked_key_raises_an_alarm_and_other_carriers_go_on(
    setup: tuple[World, object, VirtualClock],
) -> None:
    world, runtime, clock = setup
    world.carriers.emulators["seventeentrack"].token = "rotated"  # type: ignore[attr-defined]
    clock.set(T0 + timedelta(days=10))
    world.set_clock(clock())
    report = asyncio.run(runtime.poller.run_once())  # type: ignore[attr-defined]
    assert report.alarms and report.checked == 1  # Correios still answered
    with Session(runtime.poller.engine) as s:  # type: ignore[attr-defined]
        alarm = s.execute(select(Alarm)).scalar_one()
        us = s.execute(
            select(Shipment).where(Shipment.tracking_number == "RR123456785CN")
        ).scalar_one()  # type: ignore[arg-type]
    assert alarm.source == "carrier:seventeentrack" and alarm.cleared_at is None
    assert "test-token" not in alarm.message and "rotated" not in alarm.message
    assert us.poll_error.startswith("alarm:") and us.lease_owner == ""
    assert us.next_check_at == clock() + timedelta(hours=1)  # not a retry loop
    world.carriers.emulators["seventeentrack"].token = "test-token"  # type: ignore[attr-defined]
    clock.set(clock() + timedelta(hours=2))
    asyncio.run(runtime.poller.run_once())  # type: ignore[attr-defined]
    with Session(runtime.poller.engine) as s:  # type: ignore[attr-defined]
        assert s.execute(select(Alarm)).scalar_one().cleared_at is not None


def test_a_daemon_that_lost_its_lease_writes_nothing(
    setup: tuple[World, object, VirtualClock],
) -> None:
    _, runtime, _ = setup
    engine = runtime.poller.engine  # type: ignore[attr-defined]
    due = SHIPMENTS.c.closed.is_(False)
    with session_scope(engine) as s:
        mine = claim(
            s, SHIPMENTS, due, [SHIPMENTS.c.id], now=T0, owner="a", lease_seconds=60, limit=1
        )
    with session_scope(engine) as s:  # a paused daemon's lease expires; another takes the row
        theirs = claim(s, SHIPMENTS, due, [SHIPMENTS.c.id], now=T0 + timedelta(minutes=5), owner="b",
                       lease_seconds=60, limit=1)  # fmt: skip
    assert mine[0][0] == theirs[0][0] and theirs[0][1] == mine[0][1] + 1
    with session_scope(engine) as s:
        stale = s.execute(
            update(SHIPMENTS).where(fenced(SHIPMENTS, *mine[0])).values(status="delivered")
        )
        assert stale.rowcount == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "quiet_days", "expected"),
    [(Status.DELIVERED, 0, None), (Status.RETURNED, 0, None), (Status.OUT_FOR_DELIVERY, 0, 3),
     (Status.OUT_FOR_DELIVERY, 30, 3), (Status.IN_TRANSIT, 1, 12), (Status.IN_TRANSIT, 10, 24),
     (Status.NOT_FOUND, 1, 12), (Status.EXPIRED, 1, 24)],
)  # fmt: skip
def test_next_check_adapts_to_what_the_parcel_is_doing(
    status: Status, quiet_days: int, expected: int | None
) -> None:
    now = T0 + timedelta(days=40)
    result = next_check(status, now - timedelta(days=quiet_days), now)
    assert result == (None if expected is None else now + timedelta(hours=expected))


class _StealingAdapter(Adapter):
    """Answers every number as in transit, but while it "waits on the carrier" another daemon
    takes over the lease of `stolen` (a paused daemon whose lease ran out)."""

    name = "seventeentrack"
    batch_size = 40
    rate_limit = RateLimit(per_second=100)

    def __init__(self, engine: Engine, stolen: str, later: datetime) -> None:
        self.engine, self.stolen, self.later = engine, stolen, later

    async def track(self, numbers: Sequence[str]) -> list[TrackResult]:
        with session_scope(self.engine) as s:
            claim(s, SHIPMENTS, SHIPMENTS.c.tracking_number == self.stolen, [SHIPMENTS.c.id],
                  now=self.later, owner="b", lease_seconds=60, limit=1)  # fmt: skip
        event = TrackEvent(T0 + timedelta(days=1), Status.IN_TRANSIT, "InTransit", "Accepted")
        return [Tracked(n, Status.IN_TRANSIT, "InTransit", (event,)) for n in numbers]

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_poller_that_lost_a_lease_mid_batch_writes_only_the_rows_it_still_holds(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        request.getfixturevalue("pg_url")
        if database == "postgresql"
        else f"sqlite:///{tmp_path / 'pw.db'}"
    )
    engine = make_engine(url)
    upgrade(engine)
    orders = tmp_path / "o.csv"
    orders.write_text(
        "order_id,country,ship_date,tracking_numbers\nB,BR,2026-10-01,QQ850419295BR\nU,US,2026-10-01,RR123456785CN\n"
    )
    import_rows(engine, parse_file(orders).rows, T0)
    with session_scope(engine) as s:
        s.execute(update(Order).values(decide_after=None))
    now = T0 + timedelta(days=2)
    adapter = _StealingAdapter(engine, "QQ850419295BR", now + timedelta(minutes=10))
    poller = Poller(engine, {"seventeentrack": adapter}, lambda n, c, k: "seventeentrack",
                    lambda: now, owner="a", lease_seconds=300)  # fmt: skip
    report = asyncio.run(poller.run_once())
    assert report.claimed == 2 and report.checked == 1 and report.new_events == 1
    with Session(engine) as s:
        ships = {x.tracking_number: x for x in s.execute(select(Shipment)).scalars()}
        decide = {o.order_id: o.decide_after for o in s.execute(select(Order)).scalars()}
        events = s.execute(select(TrackingEvent.shipment_id)).scalars().all()
    lost, kept = ships["QQ850419295BR"], ships["RR123456785CN"]
    assert lost.lease_owner == "b" and lost.status == "" and lost.last_polled_at is None
    assert kept.lease_owner == "" and kept.status == "in_transit" and kept.last_polled_at == now
    assert events == [kept.id]
    assert decide == {"B": None, "U": now}
    engine.dispose()


def test_claims_never_polled_shipments_first_then_the_longest_overdue(
    setup: tuple[World, object, VirtualClock], tmp_path: Path
) -> None:
    _, runtime, _ = setup
    poller = runtime.poller  # type: ignore[attr-defined]
    now = T0 + timedelta(days=3)
    with session_scope(poller.engine) as s:
        order = s.execute(select(Order.id)).scalars().first()
        rows = {"SOON": now - timedelta(hours=1), "LATE": now - timedelta(days=2),
                "NEVER": None, "LATER": now + timedelta(hours=1)}  # fmt: skip
        for n, at in rows.items():
            s.add(Shipment(order_pk=order, tracking_number=n, adapter="seventeentrack",
                           next_check_at=at))  # fmt: skip
        s.execute(update(Shipment).where(Shipment.tracking_number.not_in(list(rows)))
                  .values(closed=True))  # fmt: skip
    poller.claim_limit = 2
    assert {c.number for c in poller._claim(now)} == {"NEVER", "LATE"}
    assert {c.number for c in poller._claim(now)} == {"SOON"}
    assert poller._claim(now) == []


def test_a_failed_poll_leaves_the_last_answer_time_alone(
    setup: tuple[World, object, VirtualClock],
) -> None:
    """The policy tells a stuck parcel from stale data by the carrier's last answer (F1-F3)."""
    world, runtime, clock = setup
    poller = runtime.poller  # type: ignore[attr-defined]
    clock.set(T0 + timedelta(days=5))
    world.set_clock(clock())
    asyncio.run(poller.run_once())
    answered = clock()
    for emulator in world.carriers.emulators.values():  # type: ignore[attr-defined]
        emulator.set_faults({"rules": [{"fault": "500"}]})
    clock.set(T0 + timedelta(days=6))
    _due_now(poller.engine)
    report = asyncio.run(poller.run_once())
    assert report.checked == 0 and sum(report.failures.values()) == 2
    with Session(poller.engine) as s:
        ships = list(s.execute(select(Shipment)).scalars())
    assert [x.last_polled_at for x in ships] == [answered, answered]
    assert all(x.first_polled_at == answered and x.poll_error for x in ships)


def test_a_live_poller_renews_only_the_leases_it_still_holds(
    setup: tuple[World, object, VirtualClock],
) -> None:
    _, runtime, clock = setup
    poller = runtime.poller  # type: ignore[attr-defined]
    claimed = poller._claim(clock())
    assert len(claimed) == 2
    mine, taken = claimed
    with Session(poller.engine) as s:  # another daemon took one over meanwhile
        s.execute(update(Shipment).where(Shipment.id == taken.id)  # type: ignore[arg-type]
                  .values(lease_token=taken.token + 1, lease_owner="b"))  # fmt: skip
        s.commit()
    clock.set(clock() + timedelta(minutes=3))
    poller._renew(claimed)
    with Session(poller.engine) as s:
        leases = {x.id: x for x in s.execute(select(Shipment)).scalars()}
    renewed = clock() + timedelta(seconds=poller.lease_seconds)
    assert leases[mine.id].lease_until == renewed and leases[mine.id].lease_owner == "a"
    assert leases[taken.id].lease_until != renewed and leases[taken.id].lease_owner == "b"
