"""The carrier-neutral scenario every emulator serves: parcels and what happens to them, when.

One scenario drives all emulators. Each emulator renders the same events into its own wire format
with its own code table (17TRACK sub-statuses, Correios `codigo`/`tipo`, Russian Post operation
types); what it shows depends on its virtual clock: an event is visible once `at <= now`.

JSON format::

    {
      "clock": "2026-05-20T12:00:00Z",          // optional: the emulator's virtual "now" on load
      "parcels": [
        {
          "number": "RR123456785CN",              // required; matched after upper-casing
          "origin": "CN",                         // optional, default "CN"
          "destination": "BR",                    // optional ISO alpha-2; picks the last-mile carrier
          "invalid": false,                       // optional: carriers reject the number's format
          "quirks": ["time_raw_string"],          // optional, emulator-specific oddities to serve
          "events": [                             // any order; sorted by `at` on load
            {
              "at": "2026-05-01T02:00:00Z",       // required, ISO 8601 with offset (stored as UTC)
              "status": "in_transit",             // required, a carriers.status.Status value
              "description": "Departed from sorting center",   // optional
              "location": "SHENZHEN",             // optional
              "leg": "first_mile",                // optional: "first_mile" (origin post) or
                                                  //   "last_mile" (destination post, default)
              "utc_offset": "+08:00",             // optional local offset for local-time fields
              "raw": {"seventeentrack": "InTransit_Departure", "correios": "DO/01"}
                                                  // optional: exact raw code per emulator name;
                                                  //   otherwise each emulator picks its default
                                                  //   code for `status`
            }
          ]
        }
      ]
    }

Numbers not in the scenario are unknown to every emulator (the carrier's "not found").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from carriers.numbers import normalise
from carriers.status import Status

Leg = Literal["first_mile", "last_mile"]


class ScenarioError(ValueError):
    """The scenario JSON does not follow the format above."""


def parse_time(value: str) -> datetime:
    """ISO 8601 with an offset (or `Z`) → aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError) as exc:
        raise ScenarioError(f"not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise ScenarioError(f"time {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """Aware datetime → `YYYY-MM-DDTHH:MM:SSZ`."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_offset(value: str) -> timezone:
    """`+08:00` / `-03:00` / `Z` → a fixed `timezone`."""
    if value in ("Z", "", "+00:00"):
        return UTC
    try:
        sign = -1 if value[0] == "-" else 1
        hours, minutes = value[1:].split(":")
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    except (ValueError, IndexError) as exc:
        raise ScenarioError(f"not a UTC offset: {value!r}") from exc


@dataclass(frozen=True)
class ScenarioEvent:
    """Something that happens to a parcel at `at`, in our vocabulary."""

    at: datetime
    status: Status
    description: str = ""
    location: str = ""
    leg: Leg = "last_mile"
    utc_offset: str = "+00:00"
    raw: Mapping[str, str] = field(default_factory=dict)

    def raw_code(self, emulator: str) -> str | None:
        """The exact code the scenario asks emulator `emulator` to serve, if any."""
        return self.raw.get(emulator)

    def local_time(self) -> datetime:
        """`at` in the event's local offset (for carriers that report local times)."""
        return self.at.astimezone(parse_offset(self.utc_offset))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioEvent:
        try:
            status = Status(data["status"])
        except KeyError as exc:
            raise ScenarioError(f"event needs 'at' and 'status': {dict(data)}") from exc
        except ValueError as exc:
            raise ScenarioError(f"unknown status {data['status']!r}") from exc
        leg = data.get("leg", "last_mile")
        if leg not in ("first_mile", "last_mile"):
            raise ScenarioError(f"leg must be first_mile or last_mile, got {leg!r}")
        raw = data.get("raw") or {}
        if not isinstance(raw, Mapping):
            raise ScenarioError("'raw' must map emulator names to codes")
        offset = str(data.get("utc_offset", "+00:00"))
        parse_offset(offset)
        if "at" not in data:
            raise ScenarioError(f"event needs 'at': {dict(data)}")
        return cls(
            at=parse_time(str(data["at"])),
            status=status,
            description=str(data.get("description", "")),
            location=str(data.get("location", "")),
            leg=leg,
            utc_offset=offset,
            raw={str(k): str(v) for k, v in raw.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": format_time(self.at),
            "status": self.status.value,
            "description": self.description,
            "location": self.location,
            "leg": self.leg,
            "utc_offset": self.utc_offset,
            "raw": dict(self.raw),
        }


@dataclass(frozen=True)
class ScenarioParcel:
    """One tracking number and its timeline (oldest event first)."""

    number: str
    events: tuple[ScenarioEvent, ...] = ()
    origin: str = "CN"
    destination: str | None = None
    invalid: bool = False
    quirks: frozenset[str] = frozenset()

    def visible(self, now: datetime) -> list[ScenarioEvent]:
        """Events that have happened by `now`, oldest first."""
        return [e for e in self.events if e.at <= now]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioParcel:
        if not data.get("number"):
            raise ScenarioError(f"parcel needs a 'number': {dict(data)}")
        events = sorted(
            (ScenarioEvent.from_dict(e) for e in data.get("events", [])), key=lambda e: e.at
        )
        destination = data.get("destination")
        return cls(
            number=normalise(str(data["number"])),
            events=tuple(events),
            origin=str(data.get("origin", "CN")).upper(),
            destination=str(destination).upper() if destination else None,
            invalid=bool(data.get("invalid", False)),
            quirks=frozenset(str(q) for q in data.get("quirks", [])),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "origin": self.origin,
            "destination": self.destination,
            "invalid": self.invalid,
            "quirks": sorted(self.quirks),
            "events": [e.to_dict() for e in self.events],
        }


@dataclass(frozen=True)
class Scenario:
    """Parcels by number, plus the virtual time the scenario starts at (if it names one)."""

    parcels: Mapping[str, ScenarioParcel] = field(default_factory=dict)
    clock: datetime | None = None

    def get(self, number: str) -> ScenarioParcel | None:
        return self.parcels.get(normalise(number))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        if not isinstance(data, Mapping):
            raise ScenarioError("a scenario is a JSON object with 'parcels'")
        parcels = [ScenarioParcel.from_dict(p) for p in data.get("parcels", [])]
        clock = data.get("clock")
        return cls(
            parcels={p.number: p for p in parcels},
            clock=parse_time(str(clock)) if clock else None,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Scenario:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"scenario is not JSON: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "clock": format_time(self.clock) if self.clock else None,
            "parcels": [p.to_dict() for p in self.parcels.values()],
        }
