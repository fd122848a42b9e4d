"""Fault injection for emulators: which request gets which failure.

A `FaultPlan` is a seed and a list of rules; the first rule that fires for a request decides its
fault. JSON form (also accepted by `POST /_emulator/faults`)::

    {"seed": 7, "rules": [
      {"fault": "503", "endpoint": "/gettrackinfo", "first": 2},
      {"fault": "429", "nth": [5], "retry_after": 1},
      {"fault": "reset", "probability": 0.1},
      {"fault": "slow", "delay": 0.5}
    ]}

Rule fields:

* `fault` (required): one of `FaultKind`;
* `endpoint`: applies to request paths ending with this (default: every non-control request);
* selectors, counted over the requests this rule's `endpoint` matches (1-based):
  `first: N` (the first N), `nth: [i, ...]` (exactly those), `probability: p` (seeded random);
  no selector means every matching request;
* `retry_after` (seconds, for 429/503 and quota), `delay` (seconds, for `slow` and `timeout`).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    RATE_LIMITED = "429"  # HTTP 429, with Retry-After if the rule gives one
    SERVER_ERROR = "500"
    UNAVAILABLE = "503"  # HTTP 503, with Retry-After if the rule gives one
    SLOW = "slow"  # answer normally after `delay` seconds
    TIMEOUT = "timeout"  # say nothing for `delay` seconds (default 5), then hang up
    RESET = "reset"  # close the connection with a TCP reset, no answer
    MALFORMED = "malformed"  # HTTP 200, JSON content type, body cut in half (invalid JSON)
    TRUNCATED = "truncated"  # Content-Length promises more bytes than are sent
    WRONG_CONTENT_TYPE = "content_type"  # HTTP 200 with an HTML error page
    AUTH = "auth"  # the carrier's way of saying the credentials are wrong
    QUOTA = "quota"  # the carrier's way of saying the quota/daily limit is spent
    UNKNOWN = "unknown"  # every number in the request is unknown to the carrier


# Faults every emulator serves the same way; the others go to the carrier emulator's handler.
GENERIC_FAULTS = frozenset(
    {
        FaultKind.RATE_LIMITED,
        FaultKind.SERVER_ERROR,
        FaultKind.UNAVAILABLE,
        FaultKind.SLOW,
        FaultKind.TIMEOUT,
        FaultKind.RESET,
        FaultKind.MALFORMED,
        FaultKind.TRUNCATED,
        FaultKind.WRONG_CONTENT_TYPE,
    }
)


@dataclass
class FaultRule:
    """One rule; `seen` counts the requests its endpoint matched so far."""

    fault: FaultKind
    endpoint: str | None = None
    first: int | None = None
    nth: tuple[int, ...] = ()
    probability: float | None = None
    retry_after: float | None = None
    delay: float | None = None
    seen: int = 0

    def matches(self, path: str) -> bool:
        return self.endpoint is None or path.rstrip("/").endswith(self.endpoint.rstrip("/"))

    def fires(self, rng: random.Random) -> bool:
        selectors = self.first is not None or bool(self.nth) or self.probability is not None
        if not selectors:
            return True
        if self.first is not None and self.seen <= self.first:
            return True
        if self.seen in self.nth:
            return True
        return self.probability is not None and rng.random() < self.probability

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        try:
            kind = FaultKind(str(data["fault"]))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"fault rule needs a known 'fault': {dict(data)}") from exc
        return cls(
            fault=kind,
            endpoint=data.get("endpoint"),
            first=data.get("first"),
            nth=tuple(int(i) for i in data.get("nth", ())),
            probability=data.get("probability"),
            retry_after=data.get("retry_after"),
            delay=data.get("delay"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "fault": self.fault.value,
            "endpoint": self.endpoint,
            "first": self.first,
            "nth": list(self.nth),
            "probability": self.probability,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "seen": self.seen,
        }


@dataclass
class FaultPlan:
    """Seeded rules; `pick(path)` is thread-safe and deterministic for a given request order."""

    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def pick(self, path: str) -> FaultRule | None:
        """Advance every matching rule's count; return the first rule that fires, if any."""
        chosen: FaultRule | None = None
        with self._lock:
            for rule in self.rules:
                if not rule.matches(path):
                    continue
                rule.seen += 1
                if chosen is None and rule.fires(self._rng):
                    chosen = rule
        return chosen

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultPlan:
        return cls(
            rules=[FaultRule.from_dict(r) for r in data.get("rules", [])],
            seed=int(data.get("seed", 0)),
        )

    @classmethod
    def of(cls, *rules: FaultRule | Mapping[str, Any], seed: int = 0) -> FaultPlan:
        """Build a plan from rules or their dict forms: `FaultPlan.of({"fault": "503", "first": 2})`."""
        return cls(
            rules=[r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in rules],
            seed=seed,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [r.to_dict() for r in self.rules]}
