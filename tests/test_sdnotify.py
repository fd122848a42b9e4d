"""The notify protocol against a Unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from daemon.sdnotify import Notifier, watchdog_interval


def test_ready_status_watchdog_and_stopping_reach_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(5)
        notifier = Notifier(str(path))
        assert notifier.ready("watching 3 shipments")
        assert server.recv(4096) == b"READY=1\nSTATUS=watching 3 shipments"
        assert notifier.watchdog()
        assert server.recv(4096) == b"WATCHDOG=1"
        assert notifier.stopping()
        assert server.recv(4096) == b"STOPPING=1"


def test_abstract_socket_names_are_supported() -> None:
    name = f"@parcelwatch-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name[1:])
        server.settimeout(5)
        assert Notifier(name).reloading()
        assert server.recv(4096) == b"RELOADING=1"


def test_outside_systemd_every_call_is_a_no_op(tmp_path: Path) -> None:
    assert not Notifier("").ready()
    assert not Notifier(str(tmp_path / "gone.sock")).ready()


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "120000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 60.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval() is None
