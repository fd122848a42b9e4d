"""A complete loopback world for the demo, replay, `parcelwatch sandbox` and the tests.

Carrier emulators (from `carriers.emulators`), an SMTP sink that keeps every message it receives
(and writes each as an .eml file when given a folder), and a config that points the real daemon at
them. The credentials below are the emulators' own test values, not secrets of any real account.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from carriers.emulators.sandbox import Sandbox, start_sandbox
from carriers.emulators.scenario import Scenario

# The emulators accept these (carriers/emulators: 17TRACK token, Correios user/code, Russian Post).
EMULATOR_ENV = {
    "PARCELWATCH_17TRACK_KEY": "test-token",
    "PARCELWATCH_CORREIOS_USER": "test-token",
    "PARCELWATCH_CORREIOS_ACCESS_CODE": "test-secret",
    "PARCELWATCH_RUSSIANPOST_LOGIN": "test-token",
    "PARCELWATCH_RUSSIANPOST_PASSWORD": "test-secret",
}


@dataclass
class SinkHandler:
    folder: Path | None = None
    delay: float = 0.0  # seconds to wait before answering DATA: a slow server, for stop tests
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    receiving: threading.Event = field(default_factory=threading.Event)
    reply: str = ""  # answer DATA with this instead (e.g. "451 4.3.0 try later"), for tests

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.receiving.set()
        if self.reply:
            return self.reply
        if self.delay:
            await asyncio.sleep(self.delay)
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
            count = len(self.messages)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / f"{count:04d}.eml").write_bytes(raw)
        return "250 2.0.0 Ok: queued"


class SmtpSink:
    """An SMTP server on 127.0.0.1 that accepts everything and keeps it."""

    def __init__(self, folder: Path | None = None, delay: float = 0.0) -> None:
        self.handler = SinkHandler(folder, delay)
        self.port = _free_port()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class World:
    carriers: Sandbox
    smtp: SmtpSink

    def set_clock(self, now: datetime) -> None:
        self.carriers.set_clock(now)

    def stop(self) -> None:
        self.carriers.stop()
        self.smtp.stop()


def start_world(
    scenario: Scenario | Mapping[str, Any] | None,
    now: datetime | None,
    eml_folder: Path | None = None,
    smtp_delay: float = 0.0,
) -> World:
    """Emulators (on a virtual clock at `now`, or real time if None) and an SMTP sink."""
    return World(start_sandbox(scenario, now=now), SmtpSink(eml_folder, smtp_delay).start())


def sandbox_config(shipped: str, world: World, database_url: str, **daemon: Any) -> str:
    """The shipped config text, pointed at the world's emulators, SMTP sink and database."""
    text = shipped.replace(
        'database_url = "sqlite:///parcelwatch.db"', f'database_url = "{database_url}"'
    )
    for name, url in world.carriers.urls.items():
        text = re.sub(
            rf'(\[carriers\.{name}\][^\[]*?base_url = )"[^"]*"', rf'\1"{url}"', text, flags=re.S
        )
    text = text.replace(
        'host = "127.0.0.1"\nport = 25', f'host = "127.0.0.1"\nport = {world.smtp.port}'
    )
    for key, value in daemon.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    return text
