"""From a config to running parts: adapters, routing, channels, and the three jobs.

The one place that reads secrets (through `daemon.config.secret`) and hands them to the adapters and
channels that need them; nothing else in the daemon sees a secret's value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import Engine

from carriers.base import Adapter, AdapterSettings
from carriers.httpadapter import HttpAdapter
from carriers.ratelimit import Unlimited
from carriers.registry import build_adapter
from carriers.routing import Overrides, route
from daemon.alerts import StaffAlerts
from daemon.compose import store_template_dir
from daemon.config import CarrierSection, Config, secret
from daemon.decide import Decider
from daemon.pace import DatabaseLimiter
from daemon.poll import Poller, Router
from daemon.send import Sender
from messages.channels.base import Channel, Secret
from messages.channels.manual import ManualChannel
from messages.channels.smtp import SmtpChannel, SmtpSettings
from messages.channels.webhook import WebhookChannel


def secret_values(config: Config) -> list[str]:
    """Every configured secret's value, for the log scrubber."""
    names = [config.smtp.password_env, config.webhook.secret_env]
    for carrier in config.carriers.values():
        names += [carrier.api_key_env, carrier.secret_env]
    return [value for name in names if (value := secret(name))]


def adapter_settings(config: Config, name: str) -> AdapterSettings:
    section = config.carriers[name]
    return AdapterSettings(
        base_url=section.base_url,
        api_key=secret(section.api_key_env) or "",
        secret=secret(section.secret_env) or "",
        rate_limit_per_second=section.rate_limit_per_second,
        daily_limit=section.daily_limit,
    )


def build_adapters(
    config: Config,
    clock: Callable[[], datetime],
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    carrier_limits: bool = True,
    engine: Engine | None = None,
) -> dict[str, Adapter]:
    """Adapters for every enabled carrier.

    With an `engine`, each carrier's rate and daily limits are kept in the database and shared by
    every daemon using it (`daemon.pace`); without one (a one-off `track`), in this process only.
    `carrier_limits=False` is only for virtual-clock runs against the local emulators (replay,
    demo, tests), where a day passes in a fraction of a real second and real-time request spacing
    would only slow the simulation, protecting no carrier.
    """
    adapters: dict[str, Adapter] = {}
    for name, section in config.carriers.items():
        if not section.enabled:
            continue
        adapter = build_adapter(
            name,
            adapter_settings(config, name),
            clock=clock,
            transport=transport,
            limiter=None if carrier_limits else Unlimited(),
        )
        if carrier_limits and engine is not None and isinstance(adapter, HttpAdapter):
            adapter.limiter = DatabaseLimiter(
                engine, name, shared_rate(adapter, section), adapter.per_day()
            )
        adapters[name] = adapter
    return adapters


def shared_rate(adapter: HttpAdapter, section: CarrierSection) -> float:
    """The documented rate, lowered by config; raised only for an emulator on loopback."""
    wanted = section.rate_limit_per_second
    if wanted and wanted > adapter.per_second() and _is_loopback(section.base_url):
        return wanted
    return adapter.per_second()


def _is_loopback(url: str) -> bool:
    host = httpx.URL(url).host if url else ""
    return host in ("127.0.0.1", "localhost", "::1")


def make_router(config: Config, enabled: set[str]) -> Router:
    overrides = Overrides(
        by_country=config.routing.by_country, by_carrier_name=config.routing.by_carrier
    )

    def router(number: str, country: str, carrier: str) -> str:
        return route(number, country, carrier_name=carrier, overrides=overrides, enabled=enabled)

    return router


def build_channels(config: Config, clock: Callable[[], datetime]) -> dict[str, Channel]:
    smtp = config.smtp
    email = SmtpChannel(
        SmtpSettings(
            host=smtp.host,
            port=smtp.port,
            tls=smtp.tls,
            username=smtp.username,
            password=Secret(secret(smtp.password_env) or ""),
            timeout_seconds=smtp.timeout_seconds,
            data_timeout_seconds=smtp.data_timeout_seconds,
            messages_per_connection=smtp.messages_per_connection,
        ),
        from_address=config.store.from_address,
        from_name=config.store.name,
        reply_to=config.store.reply_to,
        clock=clock,
    )
    channels: dict[str, Channel] = {"email": email, "manual": ManualChannel()}
    if config.webhook.url:
        channels["webhook"] = WebhookChannel(
            config.webhook.url,
            Secret(secret(config.webhook.secret_env) or ""),
            timeout_seconds=config.webhook.timeout_seconds,
        )
    return channels


@dataclass
class Runtime:
    """The jobs of one daemon, built from one config."""

    poller: Poller
    decider: Decider
    sender: Sender
    alerts: StaffAlerts
    adapters: dict[str, Adapter]

    async def close(self) -> None:
        await asyncio.gather(*(a.aclose() for a in self.adapters.values()))


def build_runtime(
    config: Config,
    engine: Engine,
    clock: Callable[[], datetime],
    *,
    owner: str,
    template_dir: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    carrier_limits: bool = True,
) -> Runtime:
    adapters = build_adapters(
        config, clock, transport, carrier_limits=carrier_limits, engine=engine
    )
    if template_dir is None:
        template_dir = store_template_dir(config)
    lease = config.daemon.lease_seconds
    channels = build_channels(config, clock)
    return Runtime(
        poller=Poller(engine, adapters, make_router(config, set(adapters)), clock, owner=owner,
                      lease_seconds=lease),
        decider=Decider(engine, config, clock),
        sender=Sender(engine, config, clock, channels, owner=owner, lease_seconds=lease,
                      template_dir=template_dir),
        alerts=StaffAlerts(engine, config, clock, channels),
        adapters=adapters,
    )  # fmt: skip
