"""5,000 random orders replayed through the policy: the promises hold for every one of them.

Each order gets a random destination, random parcels (moving, stalling, held at customs, waiting
for payment or pickup, failing, returning, delivered, never found), a random source (with or
without marketplace protection), sometimes a late import, and is decided when the daemon would
decide it: at its wake time (`next_decision_at`), when tracking changes, soon after something was
logged. What was decided is logged as the decide job logs it; buyer messages go out when they
may; staff approve offers, confirm extensions, or take their time.

Then, for every order: no date promised to the buyer passes without a message on or before it
(unless the order was delivered by then); no evaluation sends two buyer messages at once; no
extension is announced before it was confirmed; only refund offers, which need a person's
approval, can carry a remedy; no message promises a date already past.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from carriers.status import Status
from daemon.config import Window
from daemon.models import OutreachState
from daemon.policy import DAY, EventFacts, Intent, OrderFacts, ShipmentFacts, evaluate
from messages.kinds import Audience, Kind
from tests.policy_support import NUMBER, OTHER_NUMBER, SHIPPED, Log, day, order, visible, window

ORDERS = 5_000
END = day(120)
COUNTRIES = ("BR", "RU", "US", "DE", "FR", "NZ")
WINDOWS = {country: window(country) for country in COUNTRIES}
FATES = (
    "moving",
    "moving",
    "stalled",
    "customs_hold",
    "payment",
    "pickup",
    "failure",
    "returning",
    "delivered",
    "never_found",
)


def _parcel(rng: random.Random, number: str) -> ShipmentFacts:
    """A random parcel history over ~110 days."""
    fate = rng.choice(FATES)
    if fate == "never_found":
        return ShipmentFacts(number, rng.choice([None, Status.NOT_FOUND]))
    events: list[EventFacts] = []
    at = rng.uniform(1, 4)
    stop = rng.uniform(10, 90) if fate == "stalled" else 110.0
    turn = rng.uniform(15, 90)
    while at < min(turn, stop):
        events.append(EventFacts(day(at), Status.IN_TRANSIT, "", "In transit", ""))
        at += rng.uniform(2, 12)
    special = {
        "customs_hold": Status.CUSTOMS_HOLD,
        "payment": Status.CUSTOMS_PAYMENT_DUE,
        "pickup": Status.AVAILABLE_FOR_PICKUP,
        "failure": Status.DELIVERY_FAILURE,
        "returning": Status.RETURNING,
        "delivered": Status.DELIVERED,
    }.get(fate)
    if special is not None and turn < 110:
        events.append(EventFacts(day(turn), special, "", special.value, "CENTRO"))
        if special in (Status.CUSTOMS_HOLD, Status.CUSTOMS_PAYMENT_DUE) and rng.random() < 0.6:
            events.append(EventFacts(day(turn + rng.uniform(3, 20)), Status.IN_TRANSIT, "", "", ""))
        elif special is Status.AVAILABLE_FOR_PICKUP and rng.random() < 0.6:
            events.append(EventFacts(day(turn + rng.uniform(1, 9)), Status.DELIVERED, "", "", ""))
    status = max(events, key=lambda e: e.occurred_at).status if events else None
    return ShipmentFacts(number, status, tuple(events))


def _decide_as_the_daemon_does(
    the_order: OrderFacts, parcels: list[ShipmentFacts], the_window: Window, log: Log
) -> None:
    """Decide when the daemon would: when the order's wake time comes, when a tracking event
    arrives, a minute after something was logged (staff act, messages go out). No daily safety
    net: a promise kept only thanks to it would be a wake time the policy got wrong."""
    assert the_order.first_seen_at is not None
    now = the_order.first_seen_at
    events = sorted({e.occurred_at for p in parcels for e in p.events})
    while now <= END:
        answer = evaluate(the_order, visible(parcels, now), the_window, log.entries, now)
        log.apply((now - SHIPPED) / DAY, answer.decision)
        wakes = [END + DAY, *(e for e in events if e > now)]
        if answer.next_at is not None:
            wakes.append(answer.next_at)
        if answer.decision.intents or answer.decision.withdrawals:
            wakes.append(now + timedelta(minutes=1))
        now = min(wakes)


def _staff(rng: random.Random) -> Log:
    """Staff approve offers at once, later or never; confirm extensions or not."""
    answers = [OutreachState.SENT, OutreachState.SENT, OutreachState.AWAITING_APPROVAL]

    def approve(intent: Intent) -> OutreachState:
        # Not hash(): string hashes change from one Python process to the next.
        return answers[(len(intent.trigger) + intent.due_at.day + len(intent.kind)) % 3]

    return Log(approve=approve, confirm_actions=rng.random() < 0.7)


def test_five_thousand_random_orders_keep_every_promise() -> None:
    rng = random.Random(20261203)
    broken: list[str] = []
    orders_with_messages = 0
    for n in range(ORDERS):
        country = rng.choice(COUNTRIES)
        parcels = [_parcel(rng, NUMBER)]
        if rng.random() < 0.15:
            parcels.append(_parcel(rng, OTHER_NUMBER))
        first_seen = 0.0 if rng.random() < 0.8 else rng.uniform(5, 70)
        the_order = order(
            country,
            has_protection=rng.random() < 0.6,
            first_seen_at=day(first_seen),
        )
        log = _staff(rng)
        _decide_as_the_daemon_does(the_order, parcels, WINDOWS[country], log)
        problems = _broken_promises(log, parcels)
        orders_with_messages += bool(log.by_day)
        broken += [f"order {n} ({country}): {p}" for p in problems]
    assert not broken, "\n".join(broken[:20])
    assert orders_with_messages > ORDERS * 0.9  # the run exercised the rules


def _sent_moments(log: Log) -> list[tuple[datetime, Intent]]:
    """Every buyer message that went out (not skipped, held, or waiting for approval), with the
    moment it went out."""
    out = []
    for intents in log.by_day.values():
        for i in intents:
            if i.audience is not Audience.BUYER or i.skipped or i.held:
                continue
            entry = next(e for e in log.entries if (e.kind, e.trigger) == (i.kind, i.trigger))
            if entry.state is OutreachState.SENT and entry.sent_at is not None:
                out.append((entry.sent_at, i))
    return sorted(out, key=lambda pair: pair[0])


def _delivered_by(parcels: list[ShipmentFacts], moment: datetime) -> bool:
    """Every parcel delivered by `moment` (promises end there)."""
    return all(
        any(e.status is Status.DELIVERED and e.occurred_at <= moment for e in p.events)
        for p in parcels
    )


def _broken_promises(log: Log, parcels: list[ShipmentFacts]) -> list[str]:
    problems = []
    sent = _sent_moments(log)
    horizon = END
    for moment, intent in sent:
        promised = intent.next_update_at
        if promised is None or promised > horizon:
            continue
        # Another message going out at the same moment or later keeps it (a refund offer decided
        # with its notice and approved at once; the send job sends it an hour after the notice).
        kept = any(other is not intent and moment <= later <= promised for later, other in sent)
        if not kept and not _delivered_by(parcels, promised):
            problems.append(f"{intent.kind} on {moment:%m-%d} promised {promised:%m-%d}: nothing")
    for at, intents in log.by_day.items():
        now = [
            i
            for i in intents
            if i.audience is Audience.BUYER and not (i.skipped or i.held or i.needs_approval)
            and i.send_after is None
        ]  # fmt: skip
        if len(now) > 1:
            problems.append(f"day {at}: {[i.kind.value for i in now]} in one pass")
        for i in intents:
            if i.kind is Kind.EXTENSION and not i.skipped:
                action = next((e for e in log.entries if e.kind is Kind.EXTEND_PROTECTION), None)
                confirmed = action is not None and action.state is OutreachState.SENT
                if not confirmed or action is None or (action.sent_at or SHIPPED) > i.due_at:
                    problems.append(f"day {at}: extension before its action was confirmed")
            if i.kind is Kind.REFUND_OFFER and not i.needs_approval:
                problems.append(f"day {at}: a refund offer without approval")
            if i.next_update_at is not None and i.next_update_at <= day(at):
                problems.append(f"day {at}: {i.kind} promises a date already past")
    return problems


def test_the_generator_makes_every_fate() -> None:
    rng = random.Random(1)
    statuses = {e.status for _ in range(300) for e in _parcel(rng, NUMBER).events}
    assert {Status.DELIVERED, Status.AVAILABLE_FOR_PICKUP, Status.RETURNING} <= statuses
