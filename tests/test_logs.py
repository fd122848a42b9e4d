"""Logs carry fields, come as text or JSON, and never contain a configured secret."""

from __future__ import annotations

import json
import logging

import pytest

from daemon.logs import REDACTED, setup_logging


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_scrubbed_from_messages_fields_and_tracebacks(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(fmt, ["hunter2-smtp", "key-17track-abc"])
    log = logging.getLogger("parcelwatch.test")
    log.info("login with %s failed", "hunter2-smtp", extra={"carrier": "x key-17track-abc"})
    try:
        raise RuntimeError("bad key key-17track-abc")
    except RuntimeError:
        log.exception("request failed", extra={"order_id": "AE-1"})
    out = capsys.readouterr().out
    assert "hunter2-smtp" not in out and "key-17track-abc" not in out
    assert out.count(REDACTED) >= 3
    if fmt == "json":
        records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert records[0]["message"] == f"login with {REDACTED} failed"
        assert records[1]["order_id"] == "AE-1"
        assert "RuntimeError" in records[1]["exception"]
    else:
        assert "order_id=AE-1" in out
    logging.getLogger().handlers.clear()
