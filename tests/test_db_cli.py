"""Schema creation, in-place upgrade, refusal of out-of-date schemas, and database-level uniqueness."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from daemon.db import _alembic_config, make_engine, shipped_head, upgrade
from daemon.models import Order, Outreach, Shipment, TrackingEvent, UTCDateTime
from tests.conftest import Workspace, copy_fixture

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def test_every_command_refuses_a_database_without_schema(workspace: Workspace) -> None:
    result = workspace.run("status")
    assert result.exit_code == 3
    assert "run `parcelwatch db upgrade`" in result.stderr


@pytest.mark.parametrize(
    ("version", "said"),
    [
        ("0000", "newer than this parcelwatch knows"),
        ("0001", "is at schema 0001, this parcelwatch needs"),
    ],
    ids=["unknown version", "older version"],
)
def test_a_schema_other_than_this_programs_is_refused_and_named(
    upgraded: Workspace, version: str, said: str
) -> None:
    engine = create_engine(upgraded.database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})
    engine.dispose()
    result = upgraded.run("orders", "show", "X")
    assert result.exit_code == 3
    assert said in result.stderr


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    # The schema check trusts shipped_head when the database is current: it must agree.
    assert shipped_head() == ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _schema_drift(url: str) -> list[object]:
    """What alembic's autogenerate finds between the migrated database at `url` and the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))
    finally:
        engine.dispose()


def test_the_migrations_build_the_schema_the_models_describe(upgraded: Workspace) -> None:
    assert _schema_drift(upgraded.database_url) == []


def test_the_migrations_build_the_models_schema_on_postgresql(pg_url: str) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    assert _schema_drift(pg_url) == []


def test_db_upgrade_is_idempotent_and_keeps_data(upgraded: Workspace) -> None:
    fixture = copy_fixture("orders_good.csv", upgraded.root)
    assert upgraded.run("orders", "import", str(fixture)).exit_code == 0
    result = upgraded.run("db", "upgrade")
    assert result.exit_code == 0
    assert "already at" in result.stdout
    shown = upgraded.run("orders", "show", "AE-1001", "--json")
    assert shown.exit_code == 0 and "QQ850419295BR" in shown.stdout


def test_sqlite_runs_in_wal_mode(upgraded: Workspace) -> None:
    engine = make_engine(upgraded.database_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def _order(order_id: str = "O-1") -> Order:
    return Order(order_id=order_id, country="BR", shipped_at=NOW, created_at=NOW, updated_at=NOW)


@pytest.fixture
def session(upgraded: Workspace) -> Session:
    engine = make_engine(upgraded.database_url)
    return Session(engine)


def test_duplicate_order_is_impossible(session: Session) -> None:
    session.add(_order())
    session.commit()
    session.add(_order())
    with pytest.raises(IntegrityError):
        session.commit()


def test_duplicate_event_and_duplicate_message_are_impossible(session: Session) -> None:
    order = _order()
    session.add(order)
    session.commit()
    assert order.id is not None
    shipment = Shipment(order_pk=order.id, tracking_number="QQ850419295BR")
    session.add(shipment)
    session.commit()
    assert shipment.id is not None
    event = dict(
        shipment_id=shipment.id,
        event_key="k1",
        occurred_at=NOW,
        status="in_transit",
        recorded_at=NOW,
    )
    session.add(TrackingEvent(**event))  # type: ignore[arg-type]
    session.commit()
    session.add(TrackingEvent(**event))  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    row = dict(
        order_pk=order.id,
        kind="reassurance",
        trigger="stage",
        due_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    session.add(Outreach(**row))  # type: ignore[arg-type]
    session.commit()
    session.add(Outreach(**row))  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        session.commit()


def test_naive_datetimes_are_refused(session: Session) -> None:
    session.add(
        Order(
            order_id="N",
            country="BR",
            shipped_at=datetime(2026, 1, 1),
            created_at=NOW,
            updated_at=NOW,
        )
    )
    with pytest.raises(Exception, match="naive datetime"):
        session.commit()


def test_postgresql_upgrade_and_import(pg_url: str, workspace: Workspace) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    workspace.write_config(workspace.shipped_config_text().replace(workspace.database_url, pg_url))
    fixture = copy_fixture("orders_good.csv", workspace.root)
    first = workspace.run("orders", "import", str(fixture))
    assert first.exit_code == 0, first.output
    assert "4 new orders" in first.stdout
    second = workspace.run("orders", "import", str(fixture))
    assert "0 new orders, 0 updated, 4 unchanged" in second.stdout
    shown = workspace.run("orders", "show", "AE-1002", "--json")
    assert shown.exit_code == 0
    assert "LP00612345678901" in shown.stdout


_TIMES = [
    datetime(2026, 11, 10, 12, 0, tzinfo=UTC),
    datetime(2026, 11, 10, 12, 0, 0, 1, tzinfo=UTC),
    datetime(999, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
    datetime(2026, 7, 1, 1, 30, tzinfo=ZoneInfo("Europe/Lisbon")),
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=ZoneInfo("America/Sao_Paulo")),
]


@pytest.mark.parametrize("moment", _TIMES, ids=str)
def test_sqlite_time_text_is_the_dialects_own(moment: datetime) -> None:
    """The one-step SQLite conversions store and read exactly what the general chain does."""
    dialect = sqlite_dialect.dialect()
    column = UTCDateTime().dialect_impl(dialect)
    fast_bind = column.bind_processor(dialect)
    general_bind = super(UTCDateTime, column).bind_processor(dialect)
    assert fast_bind is not None and general_bind is not None
    text = fast_bind(moment)
    assert text == general_bind(moment)
    fast_result = column.result_processor(dialect, None)
    general_result = super(UTCDateTime, column).result_processor(dialect, None)
    assert fast_result is not None and general_result is not None
    assert fast_result(text) == general_result(text) == moment
    assert fast_result(text).tzinfo is UTC


@pytest.mark.parametrize(
    "text", ["2026-11-10 12:00:00", "2026-11-10T12:00:00.5", "2026-11-10 12:00:00+02:00", None]
)
def test_sqlite_time_text_written_by_others_reads_as_the_dialect_reads_it(text: str | None) -> None:
    dialect = sqlite_dialect.dialect()
    column = UTCDateTime().dialect_impl(dialect)
    fast = column.result_processor(dialect, None)
    general = super(UTCDateTime, column).result_processor(dialect, None)
    assert fast is not None and general is not None
    assert fast(text) == general(text)


def test_sqlite_times_round_trip_through_a_real_file(session: Session) -> None:
    for i, moment in enumerate(_TIMES):
        session.add(Order(order_id=f"T{i}", country="BR", shipped_at=moment, created_at=NOW,
                          updated_at=NOW))  # fmt: skip
    session.commit()
    stored = session.execute(select(Order.order_id, Order.shipped_at)).all()  # type: ignore[call-overload]
    assert sorted(stored) == [(f"T{i}", moment) for i, moment in enumerate(_TIMES)]
    with pytest.raises(Exception, match="naive datetime"):
        session.execute(select(Order).where(Order.shipped_at < datetime(2026, 1, 1)))  # type: ignore[arg-type]
