"""Send benchmark: N emails (default 10,000) through the send job into a local aiosmtpd sink.

The outreach log holds N planned tracking updates, due, for N orders with shipments and events;
the send job renders each from its template and sends it as in production: one SMTP connection per
`run_once` (a batch of up to 200 rows), MAIL, RCPT and DATA per message. The SMTP rate cap
(`smtp.max_per_minute`) is lifted for the bench. Figures: messages per second of
`Sender.run_once` (until nothing is left), against the raw limit: a bare aiosmtplib loop doing the
same SMTP work, `SMTP.send_message` per message, as many per connection as the product sends
(`smtp.messages_per_connection`, at most a batch), with a
message of the same size, to the same sink (the better of a run before and a run after, each over
up to 2,000 messages, to bound the bench's runtime). Target ratio at least 0.7.
Run: .venv/bin/python -m bench.send_bench [--messages N]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import aiosmtplib

from bench.common import (
    NOW,
    bench_config,
    daemon_logging,
    fresh_database,
    insert_orders,
    insert_outreach,
    report,
    start_process,
    stop_process,
)
from daemon.config import Config
from daemon.db import make_engine
from daemon.send import Sender, SendReport
from daemon.wiring import build_runtime

FULL_MESSAGES = 10_000  # the size (other sizes: bench/results/smaller)


def sample_message(size: int) -> EmailMessage:
    """A multipart/alternative message of about `size` bytes, like the ones the job sends."""
    msg = EmailMessage()
    msg["From"] = "Example Store <support@example.com>"
    msg["To"] = "Buyer <buyer@example.com>"
    msg["Subject"] = "Your order is on its way"
    text = ("Your parcel is on its way. " * (size // 60))[: size // 2]
    msg.set_content(text, charset="utf-8")
    msg.add_alternative(f"<p>{text}</p>", subtype="html", charset="utf-8")
    return msg


async def raw_loop(port: int, count: int, message: EmailMessage, per_connection: int) -> float:
    """Seconds for `count` messages, `per_connection` of them over each connection."""
    start = time.perf_counter()
    left = count
    while left:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        for _ in range(min(left, per_connection)):
            await smtp.send_message(message)
            left -= 1
        await smtp.quit()
    return time.perf_counter() - start


async def send_all(config: Config, database: Path) -> tuple[float, SendReport, int]:
    engine = make_engine(f"sqlite:///{database}")
    runtime = build_runtime(config, engine, lambda: NOW, owner="bench", carrier_limits=False)
    total = SendReport()
    runs = 0
    start = time.perf_counter()
    while True:
        one = await runtime.sender.run_once()
        runs += 1
        if not one.claimed:
            break
        for key, value in vars(one).items():
            setattr(total, key, getattr(total, key) + value)
    elapsed = time.perf_counter() - start
    await runtime.close()
    engine.dispose()
    return elapsed, total, runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=FULL_MESSAGES)
    args = parser.parse_args()
    daemon_logging()
    count = args.messages
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        database = folder / "send.db"
        setup = time.perf_counter()
        engine = fresh_database(database)
        insert_orders(engine, count, decide_after=None, next_check_at=NOW + timedelta(hours=6),
                      polled=True, events_per_shipment=2)  # fmt: skip
        insert_outreach(engine, count, NOW - timedelta(minutes=1))
        engine.dispose()
        sink, info = start_process(["bench/smtp_sink_proc.py"])
        setup = time.perf_counter() - setup
        try:
            config = bench_config(
                folder, database, smtp_port=info["port"], max_per_minute=100_000_000
            )
            # As many messages per connection as the product sends over one.
            per_connection = min(Sender.batch, config.smtp.messages_per_connection)
            message = sample_message(3000)
            size = len(message.as_bytes())
            sample = min(count, 2_000)
            raw = partial(raw_loop, info["port"], sample, message, per_connection)
            raw_before = asyncio.run(raw()) / sample
            elapsed, total, runs = asyncio.run(send_all(config, database))
            raw_after = asyncio.run(raw()) / sample
        finally:
            stop_process(sink)
    raw_s = min(raw_before, raw_after) * count  # seconds the raw loop needs for `count` messages
    assert total.sent == count, f"sent {total.sent} of {count}: {total}"
    figures: dict[str, Any] = {
        "messages": count,
        "setup_s": round(setup, 1),
        "send_s": round(elapsed, 2),
        "send_messages_per_s": round(count / elapsed),
        "send_run_once_calls": runs,
        "raw_sample_messages": sample,
        "raw_messages_per_connection": per_connection,
        "raw_aiosmtplib_ms_per_message": [round(raw_before * 1000, 2), round(raw_after * 1000, 2)],
        "raw_message_bytes": size,
        "raw_messages_per_s": round(count / raw_s),
        "ratio": round(raw_s / elapsed, 3),
        "target_ratio": 0.7,
    }
    report("send", figures, full_size=args.messages == FULL_MESSAGES)


if __name__ == "__main__":
    main()
