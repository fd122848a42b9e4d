"""Whatever a carrier sends, an adapter returns results or raises `CarrierAlarm`, nothing else.

Hypothesis builds answers from the words each adapter's own source knows (field names, tags,
codes) so the fuzzing reaches deep into the parsers, plus random bytes, wrong content types and
HTTP statuses. The adapter runs whole, HTTP client included, against an in-process transport.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carriers.correios
import carriers.russianpost
import carriers.seventeentrack
from carriers.base import (
    AdapterSettings,
    CarrierAlarm,
    InvalidNumber,
    NotFound,
    TemporaryFailure,
    Tracked,
    TrackResult,
)
from carriers.http import RetryPolicy
from carriers.ratelimit import Unlimited
from carriers.registry import build_adapter

NOW = datetime(2026, 10, 1, tzinfo=UTC)
NUMBERS = {"seventeentrack": "RR123456785CN", "correios": "QQ850419295BR",
           "russianpost": "RA123456785RU"}  # fmt: skip
MODULES = {"seventeentrack": carriers.seventeentrack, "correios": carriers.correios,
           "russianpost": carriers.russianpost}  # fmt: skip
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


def _words(name: str) -> list[str]:
    source = inspect.getsource(MODULES[name])
    return sorted(set(re.findall(r"[\"']([A-Za-z_][A-Za-z0-9_]{1,30})[\"']", source)))


def _scalars(words: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=True),
        st.sampled_from(words),
        st.text(max_size=30),
        st.sampled_from(["2026-10-01T12:00:00Z", "2026-10-01T12:00:00-03:00", "01/10/2026 12:00",
                         "2026-13-45T99:99:99", "", "RR123456785CN", "QQ850419295BR", "0", "-1"]),
    )  # fmt: skip


def _json(words: list[str]) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.sampled_from(words), st.text(max_size=8))
    return st.recursive(
        _scalars(words),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=6)
        ),
        max_leaves=40,
    )


def _xml(words: list[str]) -> st.SearchStrategy[str]:
    tags = st.sampled_from(words)

    def element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.builds(
            lambda tag, body: f"<{tag}>{body}</{tag}>",
            tags,
            st.lists(children, max_size=4).map("".join),
        )

    leaf = st.one_of(st.text(max_size=20).map(_escape), st.sampled_from(words), st.just(""))
    body = st.recursive(leaf, element, max_leaves=30)
    soap = "http://schemas.xmlsoap.org/soap/envelope/"
    return st.one_of(
        body,
        body.map(lambda b: f'<S:Envelope xmlns:S="{soap}"><S:Body>{b}</S:Body></S:Envelope>'),
        st.text(max_size=60),
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def answers(name: str) -> st.SearchStrategy[tuple[int, str, bytes]]:
    words = _words(name)
    content_types = st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/xml; charset=utf-8",
         "application/soap+xml", "text/html", ""]
    )  # fmt: skip
    statuses = st.sampled_from([200, 200, 200, 200, 201, 400, 401, 403, 404, 429, 500, 503])
    bodies = st.one_of(
        _json(words).map(lambda v: json.dumps(v, allow_nan=True).encode()),
        _xml(words).map(lambda x: x.encode()),
        st.binary(max_size=80),
    )
    return st.tuples(statuses, content_types, bodies)


def _run(name: str, answer: tuple[int, str, bytes]) -> list[TrackResult]:
    status, content_type, body = answer

    def handler(request: httpx.Request) -> httpx.Response:
        if name == "correios" and "token" in request.url.path and status != 401:
            return httpx.Response(201, json={"token": "t", "expiraEm": "2026-10-02T12:00:00"})
        headers = {"Content-Type": content_type} if content_type else {}
        return httpx.Response(status, content=body, headers=headers)

    async def go() -> list[TrackResult]:
        adapter = build_adapter(
            name,
            AdapterSettings(base_url="http://carrier.test/api", api_key="key", secret="secret"),
            clock=lambda: NOW,
            transport=httpx.MockTransport(handler),
            limiter=Unlimited(),
            retry=RetryPolicy(attempts=1, initial_delay=0.0, max_delay=0.0, jitter=0.0),
        )
        try:
            return list(await adapter.track([NUMBERS[name]]))
        finally:
            await adapter.aclose()

    try:
        results = asyncio.run(go())
    except CarrierAlarm:
        return []
    assert all(
        isinstance(r, Tracked | NotFound | InvalidNumber | TemporaryFailure) for r in results
    )
    return results


@FUZZ
@given(answers("seventeentrack"))
def test_seventeentrack_parser_survives_anything(answer: tuple[int, str, bytes]) -> None:
    _run("seventeentrack", answer)


@FUZZ
@given(answers("correios"))
def test_correios_parser_survives_anything(answer: tuple[int, str, bytes]) -> None:
    _run("correios", answer)


@FUZZ
@given(answers("russianpost"))
def test_russianpost_parser_survives_anything(answer: tuple[int, str, bytes]) -> None:
    _run("russianpost", answer)
