"""The long-running daemon: APScheduler runs the jobs; signals, readiness and the watchdog for systemd.

Start-up checks the config and the database schema before READY=1, and says exactly what is wrong if
either fails. SIGHUP reloads the config (an invalid one is logged and the old one kept); SIGTERM stops
taking new work, lets in-flight jobs finish within `stop_timeout_seconds`, releases leases and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, update

from daemon.config import Config, ConfigError, load_config
from daemon.db import open_database, session_scope
from daemon.leases import OUTREACH, SHIPMENTS
from daemon.sdnotify import Notifier, watchdog_interval

log = logging.getLogger("parcelwatch.service")

Job = Callable[[], Awaitable[Any]]


@dataclass
class Components:
    """What the jobs are built from; rebuilt on reload. `close` releases HTTP clients and the like."""

    jobs: Mapping[str, Job]
    intervals: Mapping[str, float]  # seconds, real time
    close: Callable[[], Awaitable[None]]


Builder = Callable[[Config, Engine], Components]


@dataclass
class Service:
    config_path: Path
    build: Builder
    owner: str
    notifier: Notifier = field(default_factory=Notifier)
    config: Config | None = None
    engine: Engine | None = None
    _components: Components | None = None
    _scheduler: AsyncIOScheduler | None = None
    _running: set[asyncio.Task[Any]] = field(default_factory=set)
    _stop: asyncio.Event | None = None

    def start_checks(self) -> None:
        """Load the config and open the database; raises ConfigError or SchemaError."""
        self.config = load_config(self.config_path)
        self.engine = open_database(self.config.daemon.database_url)

    async def run(self) -> int:
        assert self.config is not None and self.engine is not None, "call start_checks() first"
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        self._scheduler = AsyncIOScheduler(event_loop=loop)
        self._install(self.build(self.config, self.engine))
        watchdog = watchdog_interval()
        if watchdog:
            self._scheduler.add_job(
                self.notifier.watchdog, IntervalTrigger(seconds=watchdog), id="watchdog"
            )
        self._scheduler.start()
        self.notifier.ready("watching parcels")
        log.info("ready", extra={"config": str(self.config_path), "owner": self.owner})
        await self._stop.wait()
        return await self.shutdown()

    def _install(self, components: Components) -> None:
        assert self._scheduler is not None
        self._components = components
        for name, job in components.jobs.items():
            self._scheduler.add_job(
                self._tracked(name, job),
                IntervalTrigger(seconds=components.intervals[name]),
                id=name,
                name=name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=max(1, int(components.intervals[name])),
                replace_existing=True,
                next_run_time=datetime.now().astimezone(),  # first run at once, not after a wait
            )

    def _tracked(self, name: str, job: Job) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if self._stop is not None and self._stop.is_set():
                return
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                await job()
            except Exception:
                log.exception("job failed", extra={"job": name})
            finally:
                self._running.discard(task)

        return run

    async def reload(self) -> None:
        """SIGHUP: take the new config if it is valid, keep the old one if not."""
        self.notifier.reloading()
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload rejected, keeping the running config: %s", exc)
            self.notifier.ready("reload rejected; old config kept")
            return
        if (
            self.config is not None
            and config.daemon.database_url != self.config.daemon.database_url
        ):
            log.error("reload rejected: database_url cannot change without a restart")
            self.notifier.ready("reload rejected; old config kept")
            return
        old = self._components
        assert self.engine is not None and self._scheduler is not None
        self.config = config
        in_flight = set(self._running)
        self._install(self.build(config, self.engine))
        if in_flight:  # jobs of the old config finish on the old adapters before those close
            await asyncio.wait(in_flight, timeout=config.daemon.stop_timeout_seconds)
        if old is not None:
            await old.close()
        log.info("config reloaded", extra={"config": str(self.config_path)})
        self.notifier.ready("config reloaded")

    async def shutdown(self) -> int:
        self.notifier.stopping()
        log.info("stopping")
        assert self._scheduler is not None and self.config is not None
        # Pause first: APScheduler's shutdown cancels running coroutine jobs, and a send cancelled
        # mid-conversation is exactly the ambiguous outcome a clean stop must not create.
        self._scheduler.pause()
        if self._running:
            _done, pending = await asyncio.wait(
                set(self._running), timeout=self.config.daemon.stop_timeout_seconds
            )
            for task in pending:
                task.cancel()
            if pending:
                log.warning("stop timeout: cancelled %d jobs", len(pending))
        self._scheduler.shutdown(wait=False)
        if self._components is not None:
            await self._components.close()
        self.release_leases()
        log.info("stopped")
        return 0

    def release_leases(self) -> None:
        """Hand back unfinished claims at once instead of letting them expire."""
        assert self.engine is not None
        with session_scope(self.engine) as session:
            for table in (SHIPMENTS, OUTREACH):
                session.execute(
                    update(table)
                    .where(table.c.lease_owner == self.owner)
                    .values(lease_owner="", lease_until=None)
                )
