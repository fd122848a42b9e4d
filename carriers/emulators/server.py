"""The emulator base: a loopback HTTP server with a scenario, a virtual clock, faults and accounting.

A carrier emulator subclasses `EmulatorServer`, sets `name` (the key it reads in a scenario event's
`raw` map) and `prefix` (the base path of the real API), and implements `handle(request)`, which
renders the scenario for the carrier's wire format. It must honour `request.fault` when that is
one of the carrier-specific kinds `auth`, `quota` or `unknown` (see `carriers.emulators.faults`);
the generic faults (429, 5xx, slow, timeout, reset, malformed, truncated, wrong content type) are
served by the base before `handle` is called.

Running it:

* sync: `with SeventeenTrackEmulator(scenario) as emu: ... emu.url ...` (or `.start()`/`.stop()`);
* async: `async with SeventeenTrackEmulator(scenario) as emu:` (the server runs in its own thread,
  so it serves an event loop in the same process without blocking it);
* another process: `python -m carriers.emulators.sandbox` starts every emulator and prints their
  URLs; drive them with the control endpoints.

Control endpoints (JSON in and out), outside the API prefix:

* `GET  /_emulator/health` → `{"name", "now"}`
* `POST /_emulator/scenario` body: scenario JSON (see `carriers.emulators.scenario`) — replaces it
  and resets the carrier's state (registrations etc.); `GET` returns the loaded scenario
* `GET  /_emulator/clock`; `POST /_emulator/clock` body `{"now": "<ISO>"}` or
  `{"advance_seconds": N}`; `{"now": null}` returns to real time
* `POST /_emulator/faults` body: fault plan JSON (see `carriers.emulators.faults`);
  `DELETE /_emulator/faults` clears them; `GET` shows rules and their counters
* `GET  /_emulator/stats` → see `Stats.snapshot()`; `DELETE /_emulator/stats` resets the counters
* `GET  /_emulator/state` → carrier-specific state (e.g. registered numbers)
"""

from __future__ import annotations

import abc
import json
import socket
import struct
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit

from carriers.emulators.faults import GENERIC_FAULTS, FaultKind, FaultPlan, FaultRule
from carriers.emulators.scenario import Scenario, ScenarioError, format_time, parse_time

CONTROL_PREFIX = "/_emulator"


@dataclass
class Request:
    """One API request as the carrier emulator sees it."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    fault: FaultKind | None = None  # a carrier-specific fault the handler must serve

    def json(self) -> Any:
        """The body as JSON; raises ValueError if it is not."""
        return json.loads(self.body or b"null")

    @property
    def endpoint(self) -> str:
        """The last path segment with its slash, e.g. `/gettrackinfo`."""
        return "/" + self.path.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class Response:
    """What the handler wants sent back."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        return cls(status, body, "application/json; charset=utf-8", headers or {})

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode("utf-8"), f"{content_type}; charset=utf-8")


def peak_in_window(times: list[float], window: float = 1.0) -> int:
    """The most timestamps inside any half-open interval `[t, t + window)`."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


class Stats:
    """Request accounting: counts and arrival times per endpoint, numbers per request, faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.times: dict[str, list[float]] = defaultdict(list)
            self.batches: dict[str, list[int]] = defaultdict(list)
            self.faults: Counter[str] = Counter()

    def record(self, endpoint: str) -> None:
        with self._lock:
            self.times[endpoint].append(time.monotonic())

    def record_batch(self, endpoint: str, size: int) -> None:
        with self._lock:
            self.batches[endpoint].append(size)

    def record_fault(self, kind: FaultKind) -> None:
        with self._lock:
            self.faults[kind.value] += 1

    def snapshot(self) -> dict[str, Any]:
        """`total`, `by_endpoint`, `peak_per_second` (any 1-s window, all endpoints),
        `peak_per_second_by_endpoint`, `batch_sizes` and `max_batch` per endpoint, `faults` served."""
        with self._lock:
            everything = [t for ts in self.times.values() for t in ts]
            return {
                "total": len(everything),
                "by_endpoint": {k: len(v) for k, v in self.times.items()},
                "peak_per_second": peak_in_window(everything),
                "peak_per_second_by_endpoint": {
                    k: peak_in_window(v) for k, v in self.times.items()
                },
                "batch_sizes": {k: list(v) for k, v in self.batches.items()},
                "max_batch": {k: max(v) for k, v in self.batches.items() if v},
                "faults": dict(self.faults),
            }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: simple, and resets stay isolated

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests and the sandbox read stats, not access logs

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        emulator = self.server.emulator
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        if parts.path.startswith(CONTROL_PREFIX + "/"):
            self._send(emulator.control(request))
            return
        emulator.stats.record(request.path)
        rule = emulator.faults.pick(request.path)
        if rule is not None:
            emulator.stats.record_fault(rule.fault)
            if rule.fault in GENERIC_FAULTS:
                self._serve_fault(rule, request)
                return
            request.fault = rule.fault
        self._send(emulator.respond(request))

    def _serve_fault(self, rule: FaultRule, request: Request) -> None:
        emulator = self.server.emulator
        kind = rule.fault
        retry_headers = {"Retry-After": f"{rule.retry_after:g}"} if rule.retry_after else {}
        if kind is FaultKind.RATE_LIMITED:
            self._send(Response.json({"error": "too many requests"}, 429, retry_headers))
        elif kind is FaultKind.SERVER_ERROR:
            self._send(Response.json({"error": "internal error"}, 500))
        elif kind is FaultKind.UNAVAILABLE:
            self._send(Response.json({"error": "unavailable"}, 503, retry_headers))
        elif kind is FaultKind.SLOW:
            emulator.stopping.wait(rule.delay if rule.delay is not None else 1.0)
            self._send(emulator.respond(request))
        elif kind is FaultKind.TIMEOUT:
            emulator.stopping.wait(rule.delay if rule.delay is not None else 5.0)
            self._reset()
        elif kind is FaultKind.RESET:
            self._reset()
        elif kind is FaultKind.MALFORMED:
            good = emulator.respond(request)
            self._send(Response(200, good.body[: max(1, len(good.body) // 2)], good.content_type))
        elif kind is FaultKind.TRUNCATED:
            good = emulator.respond(request)
            self.send_response(200)
            self.send_header("Content-Type", good.content_type)
            self.send_header("Content-Length", str(len(good.body) + 100))
            self.end_headers()
            self.wfile.write(good.body[: len(good.body) // 2])
            self._reset()
        else:  # WRONG_CONTENT_TYPE: what a proxy or maintenance page looks like
            page = "<html><body><h1>Service temporarily unavailable</h1></body></html>"
            self._send(Response.text(page, 200, "text/html"))

    def _reset(self) -> None:
        """Drop the connection with RST (SO_LINGER 0), the way a crashing peer or a middlebox does."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:
            pass  # the client gave up (timed out); nothing to tell it


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: EmulatorServer) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer is expected under fault injection


class EmulatorServer(abc.ABC):
    """A carrier API on 127.0.0.1, driven by a `Scenario` on a virtual clock."""

    name: ClassVar[str] = "emulator"
    prefix: ClassVar[str] = ""  # base path of the API, e.g. "/track/v2.2"

    def __init__(
        self,
        scenario: Scenario | Mapping[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        now: datetime | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.lock = threading.RLock()  # guards scenario, clock and carrier state
        self.stats = Stats()
        self.faults = FaultPlan()
        self.stopping = threading.Event()
        self.scenario = Scenario()
        self._now: datetime | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.load_scenario(scenario or Scenario())
        if now is not None:
            self.set_clock(now)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen and serve in a background thread; returns self. Idempotent."""
        if self._server is None:
            self.stopping.clear()
            self._server = _Server((self.host, self.port), self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"emulator-{self.name}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes handlers held by slow/timeout faults."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:<port>` (control endpoints live here)."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL, what an adapter's `AdapterSettings.base_url` should be."""
        return self.origin + self.prefix

    # -- scenario, clock, faults ---------------------------------------------------------------

    def load_scenario(self, scenario: Scenario | Mapping[str, Any]) -> None:
        """Replace the scenario (and the carrier's state); adopts its clock if it names one."""
        if not isinstance(scenario, Scenario):
            scenario = Scenario.from_dict(scenario)
        with self.lock:
            self.scenario = scenario
            if scenario.clock is not None:
                self._now = scenario.clock
            self.reset_state()

    def now(self) -> datetime:
        """The virtual time (real UTC time if no clock was set)."""
        with self.lock:
            return self._now or datetime.now(UTC)

    def set_clock(self, now: datetime | None) -> None:
        """Set the virtual time (aware); None returns to real time."""
        with self.lock:
            self._now = now.astimezone(UTC) if now is not None else None

    def advance(self, seconds: float) -> datetime:
        """Move the virtual clock forward; returns the new time."""
        with self.lock:
            self._now = self.now() + timedelta(seconds=seconds)
            return self._now

    def set_faults(self, plan: FaultPlan | Mapping[str, Any] | None) -> None:
        """Replace the fault plan (None or `{}` clears it)."""
        if plan is None:
            plan = FaultPlan()
        elif not isinstance(plan, FaultPlan):
            plan = FaultPlan.from_dict(plan)
        self.faults = plan

    # -- carrier hooks -------------------------------------------------------------------------

    def reset_state(self) -> None:
        """Forget carrier state (registrations, tickets...). Called under `self.lock`."""
        return None

    def state(self) -> dict[str, Any]:
        """Carrier-specific state for `GET /_emulator/state`."""
        return {}

    @abc.abstractmethod
    def handle(self, request: Request) -> Response:
        """Answer one API request from the scenario at `self.now()`. Called under `self.lock`."""

    def respond(self, request: Request) -> Response:
        with self.lock:
            try:
                return self.handle(request)
            except Exception as exc:  # a bug in an emulator must show, not hang the client
                return Response.json({"emulator_error": repr(exc)}, 500)

    # -- control endpoints ---------------------------------------------------------------------

    def control(self, request: Request) -> Response:
        """Serve `/_emulator/...`."""
        what = request.path[len(CONTROL_PREFIX) :].strip("/")
        try:
            payload = request.json() if request.body else None
            return self._control(what, request.method, payload)
        except (ScenarioError, ValueError, TypeError, KeyError) as exc:
            return Response.json({"error": str(exc)}, 400)

    def _control(self, what: str, method: str, payload: Any) -> Response:
        if what == "health":
            return Response.json({"name": self.name, "now": format_time(self.now())})
        if what == "scenario":
            if method == "POST":
                self.load_scenario(payload or {})
            return Response.json(self.scenario.to_dict())
        if what == "clock":
            if method == "POST":
                payload = payload or {}
                if "advance_seconds" in payload:
                    self.advance(float(payload["advance_seconds"]))
                elif payload.get("now") is None:
                    self.set_clock(None)
                else:
                    self.set_clock(parse_time(str(payload["now"])))
            return Response.json({"now": format_time(self.now())})
        if what == "faults":
            if method == "DELETE":
                self.set_faults(None)
            elif method == "POST":
                self.set_faults(payload or {})
            return Response.json(self.faults.to_dict())
        if what == "stats":
            if method == "DELETE":
                self.stats.reset()
            return Response.json(self.stats.snapshot())
        if what == "state":
            with self.lock:
                return Response.json(self.state())
        return Response.json({"error": f"no control endpoint {what!r}"}, 404)
