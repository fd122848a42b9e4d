"""Storage faults: a full database, a read-only one, a locked one. Each gives a clear error, leaves
nothing half-written (`PRAGMA integrity_check`, all or none of a shipment's events), and the jobs
resume when the fault clears."""

from __future__ import annotations

import asyncio
import copy
import sqlite3
import threading
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.exc import OperationalError

from carriers.http import RetryPolicy
from daemon.config import load_config
from daemon.db import _sqlite_pragmas
from daemon.wiring import build_runtime
from tests.reliability.test_carrier_faults import NUMBERS, SCENARIO, Bed
from tests.reliability.test_carrier_faults import bed as bed

QUICK = RetryPolicy(attempts=1, initial_delay=0.01, max_delay=0.01, jitter=0.0)


def _path(bed: Bed) -> str:
    return bed.url.removeprefix("sqlite:///")


def _integrity(bed: Bed) -> str:
    with sqlite3.connect(_path(bed)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def _runtime_on(bed: Bed, url: str, timeout: float = 30, extra: Any = None) -> Any:
    engine = create_engine(
        url, connect_args={"timeout": timeout, "uri": url.startswith("sqlite:///file:")}
    )
    event.listen(engine, "connect", extra or _sqlite_pragmas)
    runtime = build_runtime(load_config(bed.config_path), engine, bed.clock, owner="t",
                            carrier_limits=False)  # fmt: skip
    for adapter in runtime.poller.adapters.values():
        adapter.retry = QUICK
    return runtime


def _poll_and_close(runtime: Any) -> None:
    """One poll and the runtime's close in the same event loop (its HTTP connections live there)."""

    async def go() -> None:
        try:
            await runtime.poller.run_once()
        finally:
            await runtime.close()
            runtime.poller.engine.dispose()

    asyncio.run(go())


def _events(bed: Bed) -> dict[str, int]:
    return {n: bed.events(n) for n in NUMBERS.values()}


def test_a_full_database_fails_the_poll_cleanly_and_resumes(bed: Bed) -> None:
    fat = copy.deepcopy(SCENARIO)  # long event texts need new pages
    for parcel in fat["parcels"]:
        for n, item in enumerate(parcel["events"]):
            item["description"] = f"{n} " + "Objeto em trânsito " * 300
    bed.world.carriers.load_scenario(fat)
    bed.world.set_clock(bed.clock())
    with sqlite3.connect(_path(bed)) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]

    def full(dbapi: Any, record: Any) -> None:
        _sqlite_pragmas(dbapi, record)
        dbapi.execute(f"PRAGMA max_page_count = {pages}")

    runtime = _runtime_on(bed, bed.url, extra=full)
    with pytest.raises(OperationalError, match="database or disk is full"):
        _poll_and_close(runtime)
    assert _integrity(bed) == "ok"
    assert set(_events(bed).values()) <= {
        0,
        2,
    }  # a shipment's history is stored whole or not at all
    bed.clock.set(bed.clock().replace(hour=23))  # later, with room again
    bed.poll()
    assert _events(bed) == {n: 2 for n in NUMBERS.values()}
    assert _integrity(bed) == "ok"


def test_a_read_only_database_fails_clearly_and_resumes(bed: Bed) -> None:
    url = f"sqlite:///file:{_path(bed)}?mode=ro&uri=true"

    def pragmas(dbapi: Any, record: Any) -> None:
        dbapi.execute("PRAGMA foreign_keys=ON")

    runtime = _runtime_on(bed, url, extra=pragmas)
    with pytest.raises(OperationalError, match="readonly"):
        _poll_and_close(runtime)
    assert _integrity(bed) == "ok" and _events(bed) == {n: 0 for n in NUMBERS.values()}
    bed.poll()  # remounted read-write
    assert _events(bed) == {n: 2 for n in NUMBERS.values()}


def _hold_write_lock(path: str, seconds: float, held: threading.Event) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    db.execute("ROLLBACK")
    db.close()


def test_a_locked_database_is_a_clear_error_past_the_busy_timeout(bed: Bed) -> None:
    held = threading.Event()
    locker = threading.Thread(target=_hold_write_lock, args=(_path(bed), 2.0, held))
    locker.start()
    held.wait(5)
    runtime = _runtime_on(bed, bed.url, timeout=0.2)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            _poll_and_close(runtime)
    finally:
        locker.join()
    assert _integrity(bed) == "ok"
    bed.poll()  # the lock is gone: the next run does the work
    assert _events(bed) == {n: 2 for n in NUMBERS.values()}


def test_a_short_lock_is_waited_out(bed: Bed) -> None:
    held = threading.Event()
    locker = threading.Thread(target=_hold_write_lock, args=(_path(bed), 1.0, held))
    locker.start()
    held.wait(5)
    try:
        bed.poll()  # the daemon's busy timeout (30 s) outlasts a CLI command's write
    finally:
        locker.join()
    assert _events(bed) == {n: 2 for n in NUMBERS.values()}
