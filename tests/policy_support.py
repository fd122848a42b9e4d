"""Builders for the policy tests: an order shipped on a fixed day, events by day, a simulated log."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from carriers.status import Status
from daemon.config import Config, Window, load_config
from daemon.models import OrderState, OutreachState
from daemon.policy import (
    Decision,
    EventFacts,
    Intent,
    LoggedOutreach,
    OrderFacts,
    ShipmentFacts,
    decide,
)
from messages.kinds import Audience, Kind

CONFIG: Config = load_config(Path(__file__).resolve().parent.parent / "config.toml")
SHIPPED = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NUMBER = "QQ850419295BR"
OTHER_NUMBER = "LB528961554HK"


def window(country: str, **changes: Any) -> Window:
    """The shipped window for a country, optionally with `stages`/`tracking` keys changed."""
    base = CONFIG.window(country)
    data = base.model_dump()
    for key, value in changes.items():
        if key in ("stages", "tracking"):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Window.model_validate(data)


def day(n: float) -> datetime:
    return SHIPPED + timedelta(days=n)


def ev(n: float, status: Status, description: str = "", location: str = "") -> EventFacts:
    return EventFacts(day(n), status, raw_code="", description=description, location=location)


def moving(*days: float) -> tuple[EventFacts, ...]:
    """An ordinary parcel in transit with an event on each of these days."""
    return tuple(ev(d, Status.IN_TRANSIT, "In transit") for d in days)


def shipment(
    *events: EventFacts,
    number: str = NUMBER,
    status: Status | None = None,
    warning: str | None = None,
) -> ShipmentFacts:
    """A shipment whose summary status is its latest event's (or `status` when given)."""
    if status is None and events:
        status = max(events, key=lambda e: (e.occurred_at, e.status.value)).status
    first_polled = min(e.occurred_at for e in events) if events else None
    return ShipmentFacts(number, status, tuple(events), first_polled, warning)


def order(country: str = "BR", state: OrderState = OrderState.OPEN, **kw: Any) -> OrderFacts:
    return OrderFacts("AE-1001", country, SHIPPED, state=state, **kw)


def logged(
    kind: Kind,
    at_day: float,
    state: OutreachState = OutreachState.SENT,
    trigger: str = "stage",
) -> LoggedOutreach:
    return LoggedOutreach(kind, trigger, state, day(at_day), day(at_day), sent_at=day(at_day))


def visible(shipments: Sequence[ShipmentFacts], now: datetime) -> list[ShipmentFacts]:
    """The shipments as a poll at `now` would know them: only events that already happened."""
    out = []
    for s in shipments:
        events = tuple(e for e in s.events if e.occurred_at <= now)
        status = s.status if not s.events else None  # a never-found number keeps its status
        out.append(
            shipment(*events, number=s.tracking_number, status=status, warning=s.number_warning)
        )
    return out


@dataclass
class Log:
    """A stand-in for the outreach table: what was decided, logged the way the daemon would."""

    entries: list[LoggedOutreach] = field(default_factory=list)
    by_day: dict[float, list[Intent]] = field(default_factory=dict)
    withdrawn: list[tuple[float, Kind, str]] = field(default_factory=list)
    approve: Callable[[Intent], OutreachState] | None = None
    confirm_actions: bool = True  # staff carry out a marketplace action the day it is decided

    def apply(self, at: float, decision: Decision) -> None:
        """Log a decision as the decide job would, and send what is planned at once (staff
        carry out a marketplace action the same day)."""
        now = day(at)
        changed = {
            (w.kind, w.trigger): OutreachState.HELD if w.hold else OutreachState.WITHDRAWN
            for w in decision.withdrawals
        }
        for w in decision.withdrawals:
            if not w.hold:
                self.withdrawn.append((at, w.kind, w.trigger))
        self.entries = [
            replace(e, state=changed[(e.kind, e.trigger)]) if (e.kind, e.trigger) in changed else e
            for e in self.entries
        ]
        for intent in decision.intents:
            if intent.skipped:
                state = OutreachState.SKIPPED
            elif intent.held:
                state = OutreachState.HELD
            elif intent.needs_approval:
                state = self.approve(intent) if self.approve else OutreachState.AWAITING_APPROVAL
            elif intent.audience is Audience.MARKETPLACE and not self.confirm_actions:
                state = OutreachState.MANUAL_PENDING
            else:
                state = OutreachState.SENT
            sent = (intent.send_after or now) if state is OutreachState.SENT else None
            entry = LoggedOutreach(
                intent.kind,
                intent.trigger,
                state,
                now,
                intent.due_at,
                sent,
                intent.next_update_at,
                intent.protection_until,
                intent.situation,
                intent.send_after,
            )
            self.entries = [
                e for e in self.entries if (e.kind, e.trigger) != (intent.kind, intent.trigger)
            ]
            self.entries.append(entry)
        if decision.intents:
            self.by_day[at] = list(decision.intents)

    def sent_on(self, at: float) -> list[Kind]:
        """The kinds produced to go out (not skipped, not held) by the evaluation on that day."""
        return [i.kind for i in self.by_day.get(at, []) if not i.skipped and not i.held]

    def held_on(self, at: float) -> list[Kind]:
        return [i.kind for i in self.by_day.get(at, []) if i.held]

    def skipped_on(self, at: float) -> list[Kind]:
        return [i.kind for i in self.by_day.get(at, []) if i.skipped]

    def logged_keys(self) -> set[tuple[Kind, str]]:
        return {(e.kind, e.trigger) for e in self.entries}


def simulate(
    the_order: OrderFacts,
    shipments: Sequence[ShipmentFacts],
    the_window: Window,
    days: Sequence[float],
    log: Log | None = None,
) -> Log:
    """Decide on each of these days, logging every result; events appear when they happen."""
    log = log or Log()
    for at in days:
        now = day(at)
        log.apply(at, decide(the_order, visible(shipments, now), the_window, log.entries, now))
    return log


def every_day(first: int, last: int) -> list[float]:
    return [float(d) for d in range(first, last + 1)]
