"""The decide job on a real SQLite file: policy answers become log rows, once, with their reasons."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, insert, select, update
from sqlmodel import Session

from carriers.status import Status
from daemon.config import load_config
from daemon.db import make_engine, upgrade
from daemon.decide import Decided, Decider, DecideReport, snapshot_json
from daemon.models import Order, Outreach, Shipment, TrackingEvent
from daemon.policy import EventFacts, ShipmentFacts
from tests.conftest import Workspace, copy_fixture

SHIPPED = datetime(2026, 10, 1, tzinfo=UTC)  # AE-1001 to Brazil in the fixture


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def brazil(upgraded: Workspace) -> tuple[Workspace, Decider, Clock]:
    fixture = copy_fixture("orders_good.csv", upgraded.root)
    assert upgraded.run("orders", "import", str(fixture)).exit_code == 0
    engine = make_engine(upgraded.database_url)
    with Session(engine) as s:  # imported on the day they shipped, as the virtual clock has it
        s.execute(update(Order).values(created_at=SHIPPED))  # type: ignore[arg-type]
        s.commit()
    clock = Clock(SHIPPED)
    return upgraded, Decider(engine, load_config(upgraded.config), clock), clock


def _log(decider: Decider, order_id: str = "AE-1001") -> list[Outreach]:
    with Session(decider.engine) as s:
        return list(
            s.execute(
                select(Outreach)
                .join(Order, Order.id == Outreach.order_pk)  # type: ignore[arg-type]
                .where(Order.order_id == order_id)  # type: ignore[arg-type]
                .order_by(Outreach.id)  # type: ignore[arg-type]
            ).scalars()
        )


def _at(decider: Decider, clock: Clock, day: float) -> None:
    clock.now = SHIPPED + timedelta(days=day)
    asyncio.run(decider.run_once())


def _event(decider: Decider, number: str, day: float, status: str, text: str = "") -> None:
    with Session(decider.engine) as s:
        ship = s.execute(select(Shipment).where(Shipment.tracking_number == number)).scalar_one()  # type: ignore[arg-type]
        at = SHIPPED + timedelta(days=day)
        s.execute(insert(TrackingEvent).values(shipment_id=ship.id, event_key=f"{day}-{status}", occurred_at=at,
                                               status=status, description=text, recorded_at=at))  # fmt: skip
        s.execute(
            update(Shipment).where(Shipment.id == ship.id).values(status=status, first_polled_at=at)
        )  # type: ignore[arg-type]
        s.execute(update(Order).where(Order.id == ship.order_pk).values(decide_after=at))  # type: ignore[arg-type]
        s.commit()


def test_brazil_day_30_45_60_each_once(brazil: tuple[Workspace, Decider, Clock]) -> None:
    _, decider, clock = brazil
    _event(decider, "QQ850419295BR", 3, "in_transit", "Objeto postado")
    _event(decider, "QQ850419295BR", 20, "in_transit", "Objeto em trânsito")
    _at(decider, clock, 29)
    assert [r.kind for r in _log(decider)] == []
    _at(decider, clock, 30)
    _at(decider, clock, 30.5)  # deciding again adds nothing
    assert [(r.kind, r.state) for r in _log(decider)] == [("tracking_update", "planned")]
    _at(decider, clock, 45)
    _at(decider, clock, 60)
    rows = _log(decider)
    assert [(r.kind, r.state) for r in rows] == [
        ("tracking_update", "planned"),
        ("reassurance", "planned"),
        ("refund_offer", "awaiting_approval"),
    ]
    offer = rows[-1]
    assert offer.needs_approval and offer.channel == "email"
    assert "60" in offer.reason
    snapshot = json.loads(offer.tracking_snapshot)
    assert snapshot["QQ850419295BR"]["last_event"]["description"] == "Objeto em trânsito"


def test_a_stalled_parcel_brings_the_reassurance_forward(
    brazil: tuple[Workspace, Decider, Clock],
) -> None:
    _, decider, clock = brazil
    _event(decider, "QQ850419295BR", 3, "in_transit")
    _at(decider, clock, 24)  # 21 days without an event: stalled (stalled_days = 20)
    rows = _log(decider)
    assert [(r.kind, r.state) for r in rows] == [("reassurance", "planned")]
    assert "stalled" in rows[0].reason or "no new event" in rows[0].reason


def test_a_late_import_sends_only_the_most_advanced_stage(
    brazil: tuple[Workspace, Decider, Clock],
) -> None:
    _, decider, clock = brazil
    _event(decider, "QQ850419295BR", 3, "in_transit")
    _at(decider, clock, 61)
    states = {r.kind: r.state for r in _log(decider)}
    assert states["refund_offer"] == "awaiting_approval"
    assert states["tracking_update"] == "skipped" and states["reassurance"] == "skipped"
    skipped = [r for r in _log(decider) if r.state == "skipped"]
    assert all("skipped" in r.reason for r in skipped)


def test_delivery_on_day_50_stops_the_refund_offer(
    brazil: tuple[Workspace, Decider, Clock],
) -> None:
    _, decider, clock = brazil
    _event(decider, "QQ850419295BR", 3, "in_transit")
    _at(decider, clock, 46)
    _event(decider, "QQ850419295BR", 50, "delivered", "Objeto entregue ao destinatário")
    _at(decider, clock, 50)
    _sent(decider, "delivered", 50)  # the review request counts from the confirmation sent
    _at(decider, clock, 70)
    kinds = [r.kind for r in _log(decider)]
    assert "refund_offer" not in kinds
    assert "delivered" in kinds and "review_request" in kinds


def _sent(decider: Decider, kind: str, day: float) -> None:
    """As the send job would leave a row once its message went out."""
    with Session(decider.engine) as s:
        s.execute(
            update(Outreach)
            .where(Outreach.kind == kind)  # type: ignore[arg-type]
            .values(state="sent", sent_at=SHIPPED + timedelta(days=day))
        )
        s.commit()


def test_the_next_decision_time_is_stored(brazil: tuple[Workspace, Decider, Clock]) -> None:
    _, decider, clock = brazil
    _event(decider, "QQ850419295BR", 3, "in_transit")
    _at(decider, clock, 31)
    with Session(decider.engine) as s:
        order = s.execute(select(Order).where(Order.order_id == "AE-1001")).scalar_one()  # type: ignore[arg-type]
    assert order.decide_after is not None
    assert clock.now < order.decide_after <= clock.now + timedelta(days=1)


def test_a_stage_on_stale_tracking_waits_and_asks_for_a_poll_now(
    brazil: tuple[Workspace, Decider, Clock],
) -> None:
    _, decider, clock = brazil
    number = "QQ850419295BR"
    _event(decider, number, 3, "in_transit", "Objeto postado")
    _event(decider, number, 20, "in_transit", "Objeto em trânsito")
    answered = SHIPPED + timedelta(days=29, hours=20)  # the evening before the tracking update
    later = SHIPPED + timedelta(days=31)
    with Session(decider.engine) as s:
        s.execute(update(Shipment).values(last_polled_at=answered, next_check_at=later))  # type: ignore[arg-type]
        s.commit()
    clock.now = SHIPPED + timedelta(days=30, hours=2)
    report = asyncio.run(decider.run_once())
    assert _log(decider) == [] and report.refresh == 1
    with Session(decider.engine) as s:
        ship = s.execute(select(Shipment).where(Shipment.tracking_number == number)).scalar_one()  # type: ignore[arg-type]
        order = s.execute(select(Order).where(Order.order_id == "AE-1001")).scalar_one()  # type: ignore[arg-type]
        assert ship.next_check_at == clock.now  # polled at once, not tomorrow
        assert order.decide_after == clock.now + timedelta(minutes=30)
        # The poll answers: nothing new, but the answer is fresh.
        s.execute(update(Shipment).values(last_polled_at=clock.now, next_check_at=later))  # type: ignore[arg-type]
        s.commit()
    clock.now += timedelta(minutes=30)
    asyncio.run(decider.run_once())
    rows = _log(decider)
    assert [(r.kind, r.state) for r in rows] == [("tracking_update", "planned")]
    assert "stale" not in rows[0].reason


def test_asking_for_a_poll_looks_the_shipments_up_by_id(
    brazil: tuple[Workspace, Decider, Clock],
) -> None:
    """The refresh UPDATE is planned on the listed ids: read as a range of ix_shipments_due, it
    walked every open shipment due later, once per piece of a pass (a quarter of a 200k pass)."""
    _, decider, clock = brazil
    # AE-1002 (to Russia, shipped 2026-09-15) has two parcels; its reassurance falls due on
    # 2026-10-30, after their last answer, so the pass asks for both (SQLite plans one id alone
    # as a primary-key lookup whatever the other conditions say).
    for number in ("RR123456785CN", "LP00612345678901"):
        _event(decider, number, 25, "in_transit")
    with Session(decider.engine) as s:
        s.execute(update(Shipment).values(last_polled_at=SHIPPED + timedelta(days=28),  # type: ignore[arg-type]
                                          next_check_at=SHIPPED + timedelta(days=31)))  # fmt: skip
        s.commit()
    statements: list[tuple[str, tuple[object, ...]]] = []

    def seen(_conn: object, _cursor: object, sql: str, params: object, *_: object) -> None:
        if sql.startswith("UPDATE shipments"):
            statements.append((sql, tuple(params)))  # type: ignore[arg-type]

    event.listen(decider.engine, "before_cursor_execute", seen)
    clock.now = SHIPPED + timedelta(days=29, hours=2)
    assert asyncio.run(decider.run_once()).refresh == 2
    event.remove(decider.engine, "before_cursor_execute", seen)
    assert len(statements) == 1
    with decider.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statements[0][0], statements[0][1])
        details = [row[-1] for row in plan]
    assert any("PRIMARY KEY" in d for d in details), details
    assert not any("ix_" in d for d in details), details


def _pass_log(url: str, workspace: Workspace, processes: int = 1) -> list[tuple[object, ...]]:
    """Orders imported into `url`, then decided over 70 days with tracking arriving between
    passes: every log row (no ids) and every order's next decision time. With `processes` > 1,
    every pass is spread over that many worker processes, one order per piece: the first two
    pieces back are written together, the last ones one by one."""
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    workspace.write_config(workspace.shipped_config_text().replace(workspace.database_url, url))
    fixture = copy_fixture("orders_good.csv", workspace.root)
    assert workspace.run("orders", "import", str(fixture)).exit_code == 0
    engine = make_engine(url)
    clock = Clock(SHIPPED)
    decider = Decider(engine, load_config(workspace.config), clock)
    if processes > 1:
        decider = Decider(engine, decider.config, clock, batch=1, processes=processes,
                          parallel_from=0, write_every=3)  # fmt: skip
    with Session(engine) as s:
        numbers = sorted(s.execute(select(Shipment.tracking_number)).scalars())
    for number in numbers:
        _event(decider, number, 3, "in_transit", "Objeto postado")
    for day in (1, 12, 30, 45):
        _at(decider, clock, day)
    _event(decider, numbers[0], 47, "customs_payment_due", "Aguardando pagamento")
    _event(decider, numbers[-1], 48, "delivered", "Entregue")
    for day in (48, 61, 70):
        _at(decider, clock, day)
    with Session(engine) as s:
        rows: list[tuple[object, ...]] = [
            (o.order_id, r.kind, r.trigger, r.audience, r.channel, r.state, r.reason,
             r.tracking_snapshot, r.needs_approval, r.due_at, r.created_at, r.decision_note)
            for r, o in s.execute(
                select(Outreach, Order).join(Order, Order.id == Outreach.order_pk)  # type: ignore[arg-type]
            )
        ]  # fmt: skip
        rows += [(o.order_id, o.decide_after) for o in s.execute(select(Order)).scalars()]
    engine.dispose()
    return sorted(rows, key=repr)


@pytest.mark.parametrize("processes", [1, 2], ids=["one process", "spread over processes"])
def test_the_same_log_and_wake_times_on_postgresql_as_on_sqlite(
    pg_url: str, workspace: Workspace, tmp_path: Path, processes: int
) -> None:
    on_sqlite = _pass_log(workspace.database_url, workspace)
    other = Workspace(tmp_path / "pg", tmp_path / "pg" / "config.toml", pg_url)
    other.root.mkdir()
    on_postgresql = _pass_log(pg_url, other, processes=processes)
    assert len(on_sqlite) > 10
    assert on_postgresql == on_sqlite


def test_a_pass_spread_over_processes_writes_what_one_process_writes(
    workspace: Workspace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    one = _pass_log(workspace.database_url, workspace)
    other = Workspace(tmp_path / "two", tmp_path / "two" / "config.toml",
                      f"sqlite:///{tmp_path / 'two' / 'parcelwatch.db'}")  # fmt: skip
    other.root.mkdir()
    caplog.set_level(logging.DEBUG, logger="parcelwatch.decide")
    spread = _pass_log(other.database_url, other, processes=2)
    assert len(one) > 10
    assert spread == one
    # The workers' log records reach this process's handlers, fields and all.
    decided = [r for r in caplog.records if r.getMessage() == "decided"]
    assert len(decided) == sum(1 for row in one if len(row) > 2)
    assert {r.processName for r in decided} != {"MainProcess"}
    assert all(getattr(r, "order_id", "") for r in decided)


def test_a_pass_logs_one_info_record_and_each_log_row_at_debug(
    brazil: tuple[Workspace, Decider, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    _, decider, clock = brazil
    _event(decider, "QQ850419295BR", 3, "in_transit", "Objeto postado")
    caplog.set_level(logging.INFO, logger="parcelwatch.decide")
    clock.now = SHIPPED + timedelta(days=46)  # BR tracking update (30) and reassurance (45)
    report = asyncio.run(decider.run_once())
    assert (report.planned, report.skipped) == (1, 1)
    (summary,) = [r for r in caplog.records if r.name == "parcelwatch.decide"]
    assert (summary.levelno, summary.getMessage()) == (logging.INFO, "decide pass")
    assert (summary.orders, summary.planned, summary.skipped) == (1, 1, 1)  # type: ignore[attr-defined]
    assert summary.by_kind == "reassurance:1"  # type: ignore[attr-defined]
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="parcelwatch.decide")
    _event(decider, "QQ850419295BR", 46, "customs_hold", "Retido na alfândega")
    asyncio.run(decider.run_once())
    assert [
        (r.levelno, r.getMessage(), r.kind) for r in caplog.records if r.getMessage() == "decided"
    ] == [  # type: ignore[attr-defined]
        (logging.DEBUG, "decided", "customs_hold")
    ]
    clock.now += timedelta(hours=1)  # nothing new: the pass only moves wake times
    caplog.clear()
    caplog.set_level(logging.INFO, logger="parcelwatch.decide")
    _event(decider, "QQ850419295BR", 46.01, "customs_hold", "Retido na alfândega")
    asyncio.run(decider.run_once())
    assert caplog.records == []


class _CountingDecider(Decider):
    """The real decider, noting how many orders each write transaction holds."""

    writes: list[int]

    def write(self, decided: Decided, now: datetime) -> DecideReport:
        self.writes.append(len(decided.wakes))
        return super().write(decided, now)


def test_a_pass_is_written_every_write_every_orders(
    brazil: tuple[Workspace, Decider, Clock],
) -> None:
    _, decider, clock = brazil
    counting = _CountingDecider(decider.engine, decider.config, clock, batch=1, write_every=2)
    counting.writes = []
    with Session(decider.engine) as s:
        s.execute(update(Shipment).values(first_polled_at=SHIPPED))  # type: ignore[arg-type]
        s.execute(update(Order).values(decide_after=SHIPPED))  # type: ignore[arg-type]
        due = len(s.execute(select(Order.id)).all())
        s.commit()
    clock.now = SHIPPED + timedelta(days=31)
    report = asyncio.run(counting.run_once())
    assert due == 4 and report.orders == due
    assert counting.writes == [2, 2]  # pieces of one order, written two at a time
    with Session(decider.engine) as s:
        assert all(o.decide_after > clock.now for o in s.execute(select(Order)).scalars())  # type: ignore[operator]
    assert len(_log(decider)) > 0


def test_the_snapshot_text_is_what_json_dumps_gives() -> None:
    def event(day: int, status: Status, description: str, location: str) -> EventFacts:
        return EventFacts(SHIPPED + timedelta(days=day), status, "X", description, location)

    ships = [
        ShipmentFacts("QQ1BR", Status.IN_TRANSIT, (event(3, Status.IN_TRANSIT, 'Objeto "em" trânsito\n', "SÃO\tPAULO"),
                                                    event(1, Status.INFO_RECEIVED, "\\x\u2028\x00", ""))),
        ShipmentFacts("LP2", None),
        ShipmentFacts("QQ1BR", Status.DELIVERED, (event(5, Status.DELIVERED, "", "客户"),)),  # a number twice
        ShipmentFacts('weird"number\u00e9', Status.NOT_FOUND),
    ]  # fmt: skip
    expected: dict[str, object] = {}
    for s in ships:
        last = max(s.events, key=lambda e: e.occurred_at, default=None)
        expected[s.tracking_number] = {
            "status": s.status.value if s.status else None,
            "events": len(s.events),
            "last_event": (
                {"at": last.occurred_at.isoformat(), "status": last.status.value,
                 "description": last.description, "location": last.location}
                if last else None
            ),
        }  # fmt: skip
    assert snapshot_json(ships) == json.dumps(expected, ensure_ascii=False, default=str)
    assert snapshot_json([]) == "{}"


def test_new_tracking_during_a_pass_keeps_the_order_due(
    brazil: tuple[Workspace, Decider, Clock],
) -> None:
    """The poll job sets decide_after to now when tracking changes; a pass that read the order
    before must not push it back to its own wake time, or the new event waits up to a day."""
    _, decider, clock = brazil
    _event(decider, "QQ850419295BR", 3, "in_transit", "Objeto postado")
    clock.now = SHIPPED + timedelta(days=10)
    decided = decider.decide_range(0, 2**63 - 1, clock.now)  # read and decided, not yet written
    with Session(decider.engine) as s:
        order_pk = s.execute(select(Order.id).where(Order.order_id == "AE-1001")).scalar_one()  # type: ignore[arg-type]
    polled_at = clock.now + timedelta(minutes=1)
    _event(decider, "QQ850419295BR", 10, "customs_hold", "Retido pela fiscalização")
    with Session(decider.engine) as s:
        s.execute(update(Order).where(Order.id == order_pk).values(decide_after=polled_at))  # type: ignore[arg-type]
        s.commit()
    decider.write(decided, clock.now)
    with Session(decider.engine) as s:
        wakes = dict(s.execute(select(Order.order_id, Order.decide_after)).all())  # type: ignore[call-overload]
    assert wakes["AE-1001"] == polled_at  # still due: the next tick decides the customs hold
    assert all(wake > clock.now for order_id, wake in wakes.items() if order_id != "AE-1001")
    clock.now = polled_at
    asyncio.run(decider.run_once())
    assert "customs_hold" in [r.kind for r in _log(decider)]
