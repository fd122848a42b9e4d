"""The sandbox's aiosmtpd sink in its own process, for the send benchmark.

Its own process so the sink's parsing does not share the benchmarked process's interpreter lock (a
real relay is not in our process either). Prints `{"port": N}` once listening; on SIGTERM prints
`{"received": N}` and exits. Run: python bench/smtp_sink_proc.py
"""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

from daemon.sandbox import SmtpSink


def main() -> None:
    sink = SmtpSink().start()
    done = threading.Event()

    def stop(*_: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(json.dumps({"port": sink.port}), flush=True)
    done.wait()
    print(json.dumps({"received": len(sink.messages)}), flush=True)
    sink.stop()


if __name__ == "__main__":
    main()
