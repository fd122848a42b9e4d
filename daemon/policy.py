"""The policy: which messages and actions are due for one order, now, and why.

`decide()` is a pure function of one order, its shipments (normalised status and tracking events),
the destination's patience `Window`, everything already in the outreach log for the order, and the
clock reading `now`. It returns the intents now due and the pending messages to withdraw or hold.
It reads no clock, database or network: the same inputs always give the same answer, and every rule
below can be checked with a table of inputs. Every number comes from the `Window` (the shipped
`config.toml`) or from the constants just below the imports.

Days are calendar days counted from `shipped_at`: "day 45" is `shipped_at + 45 days`. Each intent
carries a `trigger`; (kind, trigger) is unique per order in the log, and deciding again reproduces the
same trigger, so anything already logged is never returned again (P4) unless it was held (T2).

The buyer's situation (one per order, read from its shipments, first match wins)
  delivered                 every shipment is delivered
  awaiting_customs_payment  a shipment waits at customs for the buyer to pay
  delivery_failed           a delivery failed (address problem, refused): the buyer must act
  at_pickup_point           a shipment waits for the buyer at a pickup point
  on_its_way                a shipment with tracking events is still travelling (or no shipment)
  never_found               no shipment still out has ever shown a tracking event
  returning                 what is left is on its way back to the sender, or back already

What a message may say in each situation (T1: "send"; "hold": logged as held with the reason,
decided again when the situation changes; "-": not due at all, P1; delivered stops every one)
                    on_its_way  customs_payment  delivery_failed  pickup  never_found  returning
  tracking_update   send        hold             hold             hold    hold         -
  reassurance       send        hold             hold             hold    hold         -
  extension         send        send             send             send    send         hold
  refund_offer      send        - (S3 pause)     hold             hold    send         send
  refund_followup   send        hold             hold             hold    send         send
  promised_update   variant     variant          variant          variant variant      variant
  ("on its way" and "customs delays are common" are said only on its way; no tracking update for a
  number never found; no refund offer while the buyer is the one who must act. The extension text
  says only that protection was extended, true in any of those situations. The promised update is
  written per situation.)
  T2. A held message is decided again at every evaluation: once the situation fits, it is produced
      with the situation and dates of that moment (or skipped, as any stage, by catch-up).

Stage messages (trigger "stage": one of each per order)
  S1. `tracking_update`, `reassurance`, `extend_protection` (the window's `stages.extension`) and
      `refund_offer` fall due on their window day; a stage without a day is off for the day rule.
  S2. `extend_protection` is a marketplace action: staff (or, later, the marketplace API) extend the
      buyer's protection to shipped_at + promised_days + extension_days (promised_days: the order's
      own, else the window's). If the order's own protection ends before the window's extension day,
      it comes the day before protection ends. Once protection has ended it is skipped; an order
      whose source has no marketplace protection (`store.protection_sources`) skips it too.
  S3. Customs payment pending pauses the refund clock: the time any shipment spends in
      CUSTOMS_PAYMENT_DUE (overlaps counted once) is added to the refund offer's day and to the
      not-found refund. Nothing else moves.
  S4. Stalled: a shipment on its way whose last event is `tracking.stalled_days` old, not waiting on
      the buyer, brings `tracking.stalled_action` forward to when the threshold was crossed.
  S5. Tracking never found: a shipment with no event whose status is NOT_FOUND (or never polled)
      brings the refund offer forward to `tracking.not_found_refund_days` (plus the pause).
  S6. The ladder is tracking_update < reassurance < refund_offer: a rung that falls due after a
      higher one was logged (not rejected, withdrawn, skipped or held) is skipped as superseded.
  S7. Catch-up: of the stages due in one evaluation only the most advanced is produced, the others
      are skipped (logged, never sent). A refund offer in the walk ends it (P2), unless the
      situation holds it (T1).
  S8. Refund follow-up: REFUND_FOLLOWUP_DAYS after the refund offer was sent, if not delivered. While
      the offer's send has an unknown outcome (needs review), the follow-up is held until staff
      settle it (mark it sent: the follow-up counts from then; retry: from the new send).

Messages that state a done fact or keep a promise
  X1. `extension` (buyer): once `extend_protection` is confirmed done (state sent), saying the
      confirmed date. Never before: the buyer is not told of an extension nobody made.
  K1. Promised update: a buyer message that said "we will write to you again on X" (its
      `next_update_at`) and was sent; if no other buyer message went (or is on its way) after it, a
      `promised_update` falls due on X (trigger "promise@X"), written for the situation of that day.
  D1. The date a message promises (`next_update_at`): the window day of the next ladder stage
      still to come while the parcel is on its way, else UPDATE_EVERY later; never sooner than
      MIN_PROMISE_AHEAD. `tracking_not_found` promises that
      a person writes with the options by the not-found refund day (at least STAFF_REPLY ahead),
      `returned_to_sender` within STAFF_REPLY; the refund offer queued with them (R1) is that
      person's task in the log.

Event messages (from tracking events; trigger "<tracking number>@<start of the episode>")
  E1. One message per shipment per episode (a run of events in one state): `customs_hold`,
      `customs_payment_due`, `delivery_failure`, `returned_to_sender` (RETURNING or RETURNED),
      `ready_for_pickup`. Due when the episode began.
  R1. When the whole order is returning, its `returned_to_sender` comes with a refund offer due at
      the same moment, awaiting staff's choice of remedies (reship or refund); so does the
      `tracking_not_found` notice (E5). The buyer is told a person writes with the options by a
      date (D1); the offer waiting for that person is their task in the log.
  E2. `pickup_reminder`: `tracking.pickup_reminder_days` after the parcel became ready for pickup,
      while it still waits there.
  E3. An episode already over when first evaluated is logged as skipped; a reminder whose day never
      came while the parcel waited is not returned at all.
  E4. `delivered` (trigger "order"): when every shipment is delivered, due at the last delivery.
      `review_request`: `tracking.review_request_days` after the delivered confirmation was sent.
  E5. `tracking_not_found` (buyer) and `staff_tracking_not_found` (staff, one per shipment):
      `tracking.not_found_alert_days` after shipment for a shipment with no event at all.
  E6. `staff_invalid_tracking`: at once when the number's format looks wrong, unless the carrier
      reports events for it.
  M1. Missed: a customs hold or a delivery that happened more than MISSED_GRACE before the order was
      first seen (imported late, a backlog) is logged as skipped, not sent: old news. Episodes still
      going on that the buyer must act on, or a parcel coming back, are told (still true, useful).

A calm inbox
  B1. One buyer message at a time: of those due together, messages that ask the buyer to act, keep
      a promise or offer a remedy go first, then the earliest due. A message waits SPACING after
      the order's previous one (logged now, sent later, the log saying until when); one that asks
      the buyer to act waits only URGENT_GAP. A promised update is dropped when another message
      goes now: that one keeps the promise.
  B2. Budget: at most `budget.messages` buyer messages per order in any `budget.days`; a message
      over it waits until the budget allows, and the log says so. Messages that ask the buyer to
      act, keep a promise or offer a remedy are not counted and never wait.

Stop rules
  P1. Delivered: once every shipment is delivered, no stage message, follow-up, promised update or
      not-found notice. Stage messages need a shipment still on its way (or none at all): a parcel
      that is returning gets its `returned_to_sender` and staff choose the remedy (R1).
  P2. Refund offer: while one is logged in any state but rejected, withdrawn, skipped or held, no
      more stage messages, `extension`, `tracking_not_found`, `customs_hold` or `review_request`.
      If staff rejected the offer (the buyer chose to wait), the window continues.
  P3. A disputed, cancelled or closed order gets nothing at all. An opted-out order gets no buyer
      message and no marketplace action, but staff alerts still come.
  P4. Idempotence: anything whose (kind, trigger) is in the log (in any state but held) is never
      returned again.

Fresh tracking (telling "the parcel is stuck" from "our data is stale")
  F1. Stage messages, the follow-up and the promised update are decided on tracking at least as new
      as the moment they fell due: while a shipment on its way was last answered before that moment,
      they wait and the decision names the numbers to poll at once.
  F2. `STALE_GRACE` after a message fell due it is decided on what we have, and says since when.
  F3. A stall (S4) must be confirmed by an answer after the threshold was crossed, within the grace.

Withdrawals (decided first; the rest of the decision sees them)
  W1. A refund offer not yet sent is withdrawn when a shipment has an event after the offer was made.
  W2. Pending or held delay messages are withdrawn once every shipment is delivered.
  W3. Pending or held buyer messages and actions are withdrawn when the order is no longer open.
  W4. A pending message whose kind no longer fits the situation goes back to held (T2), and a pending
      promised update decided for another situation is written again for this one.
  A withdrawn refund offer is not offered again automatically (its trigger is used).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from carriers.status import Status
from daemon.config import Budget, Window
from daemon.models import PENDING_STATES, OrderState, OutreachState
from messages.kinds import BUYER_KINDS, STAFF_KINDS, Audience, Kind, Situation

DAY = timedelta(days=1)

REFUND_FOLLOWUP_DAYS = 7  # S8
STALE_GRACE = timedelta(days=1)  # F2
STALE_RETRY = timedelta(minutes=30)  # F1: look again this soon while a poll is awaited
UPDATE_EVERY = timedelta(days=7)  # D1: the promised update when no stage is ahead
MIN_PROMISE_AHEAD = timedelta(days=2)  # D1: never promise a date sooner than this
STAFF_REPLY = timedelta(days=2)  # D1, R1: a person writes with the options within this
MISSED_GRACE = timedelta(days=2)  # M1
SPACING = timedelta(days=1)  # B1: between buyer messages
URGENT_GAP = timedelta(hours=1)  # B1: before one that asks the buyer to act, after another

STAGE_TRIGGER = "stage"
ORDER_TRIGGER = "order"

# S1: each stage and the window key that sets its day.
STAGES: tuple[tuple[Kind, str], ...] = (
    (Kind.TRACKING_UPDATE, "tracking_update"),
    (Kind.REASSURANCE, "reassurance"),
    (Kind.EXTEND_PROTECTION, "extension"),
    (Kind.REFUND_OFFER, "refund_offer"),
)
STAGE_KINDS = tuple(kind for kind, _ in STAGES)
LADDER_RANK = {Kind.TRACKING_UPDATE: 1, Kind.REASSURANCE: 2, Kind.REFUND_OFFER: 3}  # S6
_WALK_RANK = {Kind.TRACKING_UPDATE: 1, Kind.REASSURANCE: 2, Kind.EXTEND_PROTECTION: 3,
              Kind.REFUND_OFFER: 4}  # fmt: skip  # S7: tie-break at the same moment

_ALL_OPEN = frozenset(Situation) - {Situation.DELIVERED}
_OPEN_NOT_RETURNING = _ALL_OPEN - {Situation.RETURNING}
_ON_ITS_WAY = frozenset({Situation.ON_ITS_WAY})
_NOT_WAITING_ON_BUYER = frozenset(
    {Situation.ON_ITS_WAY, Situation.NEVER_FOUND, Situation.RETURNING}
)
# T1: the situations each kind may be sent in; a kind not listed fits every situation.
FITS: dict[Kind, frozenset[Situation]] = {
    Kind.TRACKING_UPDATE: _ON_ITS_WAY,
    Kind.REASSURANCE: _ON_ITS_WAY,
    Kind.EXTEND_PROTECTION: _OPEN_NOT_RETURNING,
    Kind.EXTENSION: _OPEN_NOT_RETURNING,
    Kind.REFUND_OFFER: _NOT_WAITING_ON_BUYER,
    Kind.REFUND_FOLLOWUP: _NOT_WAITING_ON_BUYER,
    Kind.PROMISED_UPDATE: _ALL_OPEN,
}
# How staff read a situation in a hold's reason.
SITUATION_WORDS = {
    Situation.ON_ITS_WAY: "the parcel is on its way",
    Situation.AWAITING_CUSTOMS_PAYMENT: "the parcel waits at customs for the buyer's payment",
    Situation.DELIVERY_FAILED: "a delivery failed and the buyer must act",
    Situation.AT_PICKUP_POINT: "the parcel waits for the buyer at a pickup point",
    Situation.NEVER_FOUND: "the tracking number was never found",
    Situation.RETURNING: "the parcel is going back to the sender",
    Situation.DELIVERED: "every parcel is delivered",
}

# Kinds that exist only because the parcel is late; delivery stops them (P1, W2).
DELAY_KINDS = frozenset(
    {*STAGE_KINDS, Kind.EXTENSION, Kind.REFUND_FOLLOWUP, Kind.TRACKING_NOT_FOUND,
     Kind.PROMISED_UPDATE}
)  # fmt: skip
# Held while a refund offer is live (P2).
_HELD_BY_OFFER = frozenset(
    {*STAGE_KINDS, Kind.EXTENSION, Kind.CUSTOMS_HOLD, Kind.REVIEW_REQUEST, Kind.TRACKING_NOT_FOUND}
)
# Messages that ask the buyer to act, keep a promise or offer a remedy: first in a pass (B1),
# never counted or held back by the budget (B2).
URGENT_KINDS = frozenset(
    {Kind.CUSTOMS_PAYMENT_DUE, Kind.DELIVERY_FAILURE, Kind.READY_FOR_PICKUP, Kind.PICKUP_REMINDER,
     Kind.RETURNED_TO_SENDER, Kind.REFUND_OFFER, Kind.PROMISED_UPDATE}
)  # fmt: skip
# Messages that promise to write again, and on which date (D1).
_PROMISING = frozenset({Kind.TRACKING_UPDATE, Kind.REASSURANCE, Kind.EXTENSION,
                        Kind.PROMISED_UPDATE})  # fmt: skip
_MISSED_IF_OLD = frozenset({Kind.CUSTOMS_HOLD, Kind.DELIVERED})  # M1

# Logged in one of these, an entry no longer counts (an offer stops nothing, a rung supersedes
# nothing); a held entry is decided again (T2).
DEAD_STATES = frozenset(
    {OutreachState.REJECTED, OutreachState.WITHDRAWN, OutreachState.SKIPPED, OutreachState.HELD}
)
# Would still go out unless someone acts, or held: what W1-W4 may change.
WITHDRAWABLE_STATES = PENDING_STATES | {OutreachState.HELD}
# A buyer row in one of these went out or is on its way: it keeps a promise (K1), counts
# against the budget (B2).
GOING_STATES = frozenset(
    {OutreachState.PLANNED, OutreachState.APPROVED, OutreachState.SENDING, OutreachState.SENT,
     OutreachState.MANUAL_PENDING, OutreachState.NEEDS_REVIEW}
)  # fmt: skip

# E1: one table from episode state to message.
EPISODE_MESSAGES: tuple[tuple[Kind, frozenset[Status], str], ...] = (
    (Kind.CUSTOMS_HOLD, frozenset({Status.CUSTOMS_HOLD}), "held in customs"),
    (
        Kind.CUSTOMS_PAYMENT_DUE,
        frozenset({Status.CUSTOMS_PAYMENT_DUE}),
        "customs asks the buyer to pay duty or fees",
    ),
    (Kind.DELIVERY_FAILURE, frozenset({Status.DELIVERY_FAILURE}), "delivery failed"),
    (
        Kind.RETURNED_TO_SENDER,
        frozenset({Status.RETURNING, Status.RETURNED}),
        "on its way back to the sender",
    ),
    (Kind.READY_FOR_PICKUP, frozenset({Status.AVAILABLE_FOR_PICKUP}), "ready for pickup"),
)
_NOT_ON_ITS_WAY = frozenset({Status.DELIVERED, Status.RETURNING, Status.RETURNED})
_WAITING_ON_BUYER = frozenset({Status.CUSTOMS_PAYMENT_DUE, Status.AVAILABLE_FOR_PICKUP})


# --- Inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventFacts:
    """One normalised tracking event. Times are aware UTC."""

    occurred_at: datetime
    status: Status
    raw_code: str = ""
    description: str = ""
    location: str = ""


@dataclass(frozen=True, slots=True)
class ShipmentFacts:
    """One tracking number of the order, as last polled. Events may come in any order."""

    tracking_number: str
    status: Status | None = None  # None: never polled yet
    events: tuple[EventFacts, ...] = ()
    first_polled_at: datetime | None = None
    number_warning: str | None = None  # `carriers.numbers.identify(n).warning`
    answered_at: datetime | None = None  # when the carrier last answered (F1-F3); None: never


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """The order as the policy needs it."""

    order_id: str
    country: str
    shipped_at: datetime
    promised_days: int | None = None  # the marketplace's own; None: the window's
    state: OrderState = OrderState.OPEN
    has_protection: bool = True  # its marketplace has a protection the seller extends (S2)
    first_seen_at: datetime | None = None  # when parcelwatch first stored it (M1); None: always


@dataclass(frozen=True, slots=True)
class LoggedOutreach:
    """One row already in the outreach log for this order."""

    kind: Kind
    trigger: str
    state: OutreachState
    created_at: datetime
    due_at: datetime
    sent_at: datetime | None = None
    next_update_at: datetime | None = None  # the date it promised to write again (K1)
    protection_until: datetime | None = None  # extend_protection: the date it extends to (X1)
    situation: Situation | None = None  # the situation it was decided for (W4)
    send_after: datetime | None = None  # not sent before this (B1, B2)


# --- Outputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Intent:
    """A message or action now due, to be logged: sent, or `skipped` or `held` (never sent as is)."""

    kind: Kind
    trigger: str
    due_at: datetime
    needs_approval: bool
    reason: str
    audience: Audience
    situation: Situation
    skipped: bool = False
    skip_reason: str = ""
    held: bool = False  # T1: logged as held, decided again when the situation changes
    was_held: bool = False  # T2: the log already holds this (kind, trigger) as held
    tracking_number: str | None = None  # the shipment an event message is about
    next_update_at: datetime | None = None  # D1: the date it promises to write again
    protection_until: datetime | None = None  # S2, X1
    expected_by: datetime | None = None  # when the parcel is expected, if still ahead
    send_after: datetime | None = None  # B1, B2: not before this
    note: str = ""  # for staff: why it waits (B1, B2)


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A pending outreach that must not go out any more (or not yet: `hold`, W4)."""

    kind: Kind
    trigger: str
    reason: str
    hold: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    intents: tuple[Intent, ...] = ()
    withdrawals: tuple[Withdrawal, ...] = ()
    awaiting_tracking: tuple[str, ...] = ()  # F1: numbers whose fresh answer is awaited


@dataclass(frozen=True, slots=True)
class Evaluation:
    """`decide()` and `next_decision_at()` for the same arguments."""

    decision: Decision
    next_at: datetime | None


# --- Reading the tracking ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Run:
    """An episode: consecutive events of one shipment in one group of statuses."""

    start: EventFacts
    ended_at: datetime | None  # None: the shipment is still in this state


def _event_order(event: EventFacts) -> tuple[datetime, str, str, str]:
    return (event.occurred_at, event.status.value, event.raw_code, event.description)


class _Parcel:
    """A shipment with its events in time order, and what the rules read from them."""

    def __init__(self, facts: ShipmentFacts) -> None:
        self.facts = facts
        self.number = facts.tracking_number
        self.events = tuple(sorted(facts.events, key=_event_order))
        self.last_event = self.events[-1] if self.events else None
        current = facts.status
        if current is None and self.last_event is not None:
            current = self.last_event.status
        self.current = current
        self.on_its_way = current not in _NOT_ON_ITS_WAY
        self.delivered = current is Status.DELIVERED
        self.never_found = not self.events and current in (None, Status.NOT_FOUND)
        self.statuses = frozenset(e.status for e in self.events)

    def runs(self, group: frozenset[Status]) -> list[_Run]:
        """The episodes of this parcel in `group`'s statuses, oldest first."""
        if self.statuses.isdisjoint(group):
            return []  # most parcels only ever move on
        runs: list[_Run] = []
        events = self.events
        i = 0
        while i < len(events):
            if events[i].status not in group:
                i += 1
                continue
            j = i
            while j + 1 < len(events) and events[j + 1].status in group:
                j += 1
            if j + 1 < len(events):
                ended: datetime | None = events[j + 1].occurred_at
            elif self.current in group:
                ended = None
            else:  # the carrier's summary moved on without an event: over, as of its last event
                ended = events[j].occurred_at
            runs.append(_Run(events[i], ended))
            i = j + 1
        return runs

    def delivered_at(self) -> datetime | None:
        if not self.delivered:
            return None
        runs = self.runs(frozenset({Status.DELIVERED}))
        if runs and runs[-1].ended_at is None:
            return runs[-1].start.occurred_at
        if self.last_event is not None:
            return self.last_event.occurred_at
        return self.facts.first_polled_at


def situation_of(parcels: Sequence[_Parcel]) -> Situation:
    """The buyer's situation: the first row of the table in the module docstring that matches."""
    if parcels and all(p.delivered for p in parcels):
        return Situation.DELIVERED
    out = [p for p in parcels if not p.delivered]
    statuses = {p.current for p in out}
    if Status.CUSTOMS_PAYMENT_DUE in statuses:
        return Situation.AWAITING_CUSTOMS_PAYMENT
    if Status.DELIVERY_FAILURE in statuses:
        return Situation.DELIVERY_FAILED
    if Status.AVAILABLE_FOR_PICKUP in statuses:
        return Situation.AT_PICKUP_POINT
    if not parcels or any(p.on_its_way and not p.never_found for p in out):
        return Situation.ON_ITS_WAY
    if any(p.never_found for p in out):
        return Situation.NEVER_FOUND
    return Situation.RETURNING


def customs_pause(shipments: Iterable[ShipmentFacts], now: datetime) -> timedelta:
    """Time spent waiting for the buyer to pay customs (S3), overlaps between shipments once."""
    total, _running = _customs_pause([_Parcel(s) for s in shipments], now)
    return total


def _customs_pause(parcels: Sequence[_Parcel], now: datetime) -> tuple[timedelta, bool]:
    """S3: the pause so far, and whether it is still running (the refund day then slides)."""
    spans: list[tuple[datetime, datetime]] = []
    running = False
    for parcel in parcels:
        for run in parcel.runs(frozenset({Status.CUSTOMS_PAYMENT_DUE})):
            start = run.start.occurred_at
            end = now if run.ended_at is None else min(run.ended_at, now)
            if run.ended_at is None and start <= now:
                running = True
            if end > start:
                spans.append((start, end))
    total = timedelta(0)
    cursor: datetime | None = None
    for start, end in sorted(spans):
        if cursor is not None and start < cursor:
            start = cursor
        if end > start:
            total += end - start
        cursor = end if cursor is None else max(cursor, end)
    return total, running


# --- The order as a whole ----------------------------------------------------------------------


@dataclass(slots=True)  # never changed once built (`replace` makes a new one)
class _Due:
    """A rule's answer: what, when, why (formatted only if produced), and what it will say."""

    kind: Kind
    trigger: str
    due_at: datetime
    why: Callable[[], str]
    skip: str = ""  # logged as skipped, never sent
    hold: str = ""  # logged as held (T1)
    number: str | None = None  # the shipment an event message is about
    protection_until: datetime | None = None
    next_update_at: datetime | None = None  # when a rule fixes the promised date itself (D1)
    moving: bool = False  # due_at slides with the clock (the customs pause is running)


class _Case:
    """Everything the rules look at, read once from the order, its tracking and its log."""

    def __init__(
        self,
        order: OrderFacts,
        shipments: Sequence[ShipmentFacts],
        window: Window,
        logged: Iterable[LoggedOutreach],
        now: datetime,
    ) -> None:
        self.order = order
        self.window = window
        self.now = now
        self.shipped = order.shipped_at
        self.promised = order.promised_days or window.promised_days
        self.parcels = [_Parcel(s) for s in shipments]
        self.situation = situation_of(self.parcels)
        self.pause, self.pause_running = _customs_pause(self.parcels, now)
        self.never_found = [p for p in self.parcels if p.never_found]
        self.any_on_its_way = not self.parcels or any(p.on_its_way for p in self.parcels)
        self.stall = _stall(self.parcels, window.tracking.stalled_days * DAY)
        # The parcel with the latest event (the first on a tie), for the reasons.
        scanned = [(e.occurred_at, p) for p in self.parcels if (e := p.last_event) is not None]
        self.latest = max(scanned, key=lambda s: s[0], default=(None, None))[1]
        self.read_log(logged)

    def read_log(self, logged: Iterable[LoggedOutreach]) -> None:
        self.logged = {(entry.kind, entry.trigger): entry for entry in logged}
        self.offer_live = self.live(Kind.REFUND_OFFER) is not None  # P2

    def with_log(self, logged: Iterable[LoggedOutreach]) -> _Case:
        """The same order and tracking with another log."""
        case = _Case.__new__(_Case)
        case.__dict__.update(self.__dict__)
        case.read_log(logged)
        return case

    def live(self, kind: Kind, trigger: str = STAGE_TRIGGER) -> LoggedOutreach | None:
        entry = self.logged.get((kind, trigger))
        return entry if entry is not None and entry.state not in DEAD_STATES else None

    def at_day(self, day: int) -> datetime:
        return self.shipped + day * DAY

    def day(self, moment: datetime) -> int:
        return (moment - self.shipped) // DAY

    def tracking_phrase(self) -> str:
        """`last event 12 days ago: 'Encaminhado...' in CURITIBA`, for staff reading the log."""
        if self.latest is None or self.latest.last_event is None:
            return "no tracking event yet"
        event = self.latest.last_event
        phrase = f"last event {_ago(self.now - event.occurred_at)}: {_event_text(event)}"
        if len(self.parcels) > 1:
            phrase += f" ({self.latest.number})"
        return phrase


def _stall(parcels: Sequence[_Parcel], limit: timedelta) -> tuple[datetime, _Parcel] | None:
    """S4: when the earliest stalled shipment crossed the threshold without news, and which."""
    stalls = [
        (p.last_event.occurred_at + limit, p)
        for p in parcels
        if p.last_event is not None and p.on_its_way and p.current not in _WAITING_ON_BUYER
    ]
    return min(stalls, key=lambda s: s[0], default=None)


def _ago(delta: timedelta) -> str:
    days = max(delta // DAY, 0)
    if days == 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days} days ago"


def _event_text(event: EventFacts) -> str:
    text = repr(event.description) if event.description else event.status.value
    if event.location:
        text += f" in {event.location}"
    return text


def ymd(moment: datetime) -> str:
    """`moment` as YYYY-MM-DD, for reasons and notes."""
    return moment.date().isoformat()


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _days(delta: timedelta) -> str:
    days = delta / DAY
    return f"{days:.0f}" if days == int(days) else f"{days:.1f}"


# --- Stage rules (S1-S8, X1) -------------------------------------------------------------------


def _stage_answers(case: _Case) -> list[_Due]:
    """S1-S5 for every stage that falls due at all, read from the window and the tracking only."""
    return [due for kind, key in STAGES if (due := _stage_due(case, kind, key)) is not None]


def _stage_due(case: _Case, kind: Kind, key: str) -> _Due | None:
    """S1-S5 for one stage: the earliest moment the day, a stall or a number never found sets."""
    window_day = case.window.stage_day(key)
    day = window_day
    brought = False
    if kind is Kind.EXTEND_PROTECTION and day is not None and day >= case.promised:
        day, brought = max(case.promised - 1, 0), True  # S2: the day before protection ends
    refund = kind is Kind.REFUND_OFFER
    pause = case.pause if refund else timedelta(0)
    candidates: list[tuple[datetime, Callable[[], str]]] = []
    if day is not None:
        label = f"{case.order.country} {key} at {window_day}"
        if brought:
            label += f", brought to day {day}: this order's protection ends on day {case.promised}"
        candidates.append((case.at_day(day) + pause, lambda: _day_reason(case, label, pause)))
    stall = case.stall
    if stall is not None and case.window.tracking.stalled_action == key and _confirmed(case):
        candidates.append((stall[0], lambda: _stall_reason(case, key, day)))
    if refund and case.never_found:
        found_day = case.window.tracking.not_found_refund_days
        candidates.append((case.at_day(found_day) + pause, lambda: _not_found_reason(case)))
    if not candidates:
        return None
    due_at, why = min(candidates, key=lambda c: c[0])  # the first of the earliest
    moving = refund and case.pause_running and not (stall is not None and due_at == stall[0])
    if kind is Kind.EXTEND_PROTECTION:
        return _extend_protection(case, due_at, why, moving)
    return _Due(kind, STAGE_TRIGGER, due_at, lambda: f"{why()}; {case.tracking_phrase()}",
                moving=moving)  # fmt: skip


def _day_reason(case: _Case, label: str, pause: timedelta) -> str:
    """S1-S3: the window's day for the stage."""
    paused = f"; refund clock paused {_days(pause)} days while customs payment was due"
    return f"day {case.day(case.now)} after shipment ({label}){paused if pause else ''}"


def _stall_reason(case: _Case, key: str, day: int | None) -> str:
    """S4: the stall that brought the stage forward."""
    assert case.stall is not None
    crossed, parcel = case.stall
    assert parcel.last_event is not None
    reason = (
        f"stalled: no new event on {parcel.number} for {case.window.tracking.stalled_days} days "
        f"since {ymd(parcel.last_event.occurred_at)} (threshold crossed {ymd(crossed)}), {key} "
        "brought forward"
    )
    if day is not None:
        reason += f" from day {day}"
    if parcel.current is Status.EXPIRED:
        reason += "; the carrier stopped reporting, so our data may be stale"
    return reason


def _not_found_reason(case: _Case) -> str:
    """S5: tracking never found."""
    paused = (
        f"; refund clock paused {_days(case.pause)} days while customs payment was due"
        if case.pause
        else ""
    )
    return (
        f"tracking never found: {', '.join(p.number for p in case.never_found)} has no event "
        f"{case.window.tracking.not_found_refund_days} days after shipment "
        f"({case.order.country} not_found_refund_days){paused}"
    )


def _confirmed(case: _Case) -> bool:
    """F3: a stall the carrier has not confirmed by an answer after its crossing, within the
    grace, is stale data rather than a stuck parcel."""
    assert case.stall is not None
    crossed, parcel = case.stall
    answered = parcel.facts.answered_at
    return answered is None or answered >= crossed or case.now < crossed + STALE_GRACE


def _extend_protection(case: _Case, due_at: datetime, why: Callable[[], str], moving: bool) -> _Due:
    """S2: the action, with the date it extends protection to."""
    ends = case.at_day(case.promised)
    until = ends + case.window.extension_days * DAY
    skip = ""
    if not case.order.has_protection:
        skip = "this order's marketplace has no buyer protection to extend"
    elif case.now >= ends:
        skip = f"protection already ended on {ymd(ends)}"
    return _Due(
        Kind.EXTEND_PROTECTION,
        STAGE_TRIGGER,
        due_at,
        lambda: (
            f"{why()}; {case.tracking_phrase()}; extend protection by "
            f"{case.window.extension_days} days to {ymd(until)}"
        ),
        skip=skip,
        protection_until=until,
        moving=moving,
    )


def _stage_dues(case: _Case, answers: list[_Due]) -> list[_Due]:
    """S1-S6, P1: the stages not logged yet, a rung below a logged one skipped as superseded."""
    if not case.any_on_its_way or case.situation is Situation.DELIVERED:
        return []
    dues = []
    for due in answers:
        if _logged(case, due):
            continue
        rank = LADDER_RANK.get(due.kind, 0)
        higher = [k for k, r in LADDER_RANK.items() if r > rank and case.live(k)] if rank else []
        if higher:
            due = replace(due, skip=f"superseded: {higher[0]} was already logged for this order")
        dues.append(due)
    return dues


def _extension_message(case: _Case) -> list[_Due]:
    """X1: the buyer hears of the extension once it is done, with the date it was done to."""
    action = case.logged.get((Kind.EXTEND_PROTECTION, STAGE_TRIGGER))
    if action is None or action.state is not OutreachState.SENT:
        return []
    ends = case.at_day(case.promised)
    until = action.protection_until or ends + case.window.extension_days * DAY
    confirmed = action.sent_at or action.due_at
    return [
        _Due(
            Kind.EXTENSION,
            STAGE_TRIGGER,
            confirmed,
            lambda: f"protection extended to {ymd(until)}, confirmed on {ymd(confirmed)}",
            skip=f"the extended protection already ended on {ymd(until)}"
            if case.now >= until
            else "",
            protection_until=until,
        )
    ]


def _followup_dues(case: _Case) -> list[_Due]:
    """S8: a week after the offer went out; held while its send is of unknown outcome."""
    offer = case.logged.get((Kind.REFUND_OFFER, STAGE_TRIGGER))
    if offer is None or case.situation is Situation.DELIVERED:
        return []
    if offer.state is OutreachState.SENT:
        sent = offer.sent_at or offer.due_at
        return [
            _Due(
                Kind.REFUND_FOLLOWUP,
                STAGE_TRIGGER,
                sent + REFUND_FOLLOWUP_DAYS * DAY,
                lambda: (
                    f"refund offer sent {ymd(sent)}, {REFUND_FOLLOWUP_DAYS} days without "
                    f"delivery; {case.tracking_phrase()}"
                ),
            )
        ]
    if offer.state is OutreachState.NEEDS_REVIEW:
        made = offer.created_at
        return [
            _Due(
                Kind.REFUND_FOLLOWUP,
                STAGE_TRIGGER,
                made + REFUND_FOLLOWUP_DAYS * DAY,
                lambda: f"refund offer made {ymd(made)}",
                hold="held: whether the refund offer went out is unknown (needs review); "
                "decided once staff mark it sent or retry it",
            )
        ]
    return []


def _promise_dues(case: _Case) -> list[_Due]:
    """K1: the last sent buyer message promised a date, and nothing went to the buyer since."""
    promises = [
        e
        for e in case.logged.values()
        if e.state is OutreachState.SENT and e.next_update_at is not None
        and e.kind in BUYER_KINDS
    ]  # fmt: skip
    if not promises or case.situation is Situation.DELIVERED:
        return []
    promise = max(promises, key=_going_at)
    kept = any(
        e is not promise and e.state in GOING_STATES and e.kind in BUYER_KINDS
        and _going_at(e) >= _going_at(promise)
        for e in case.logged.values()
    )  # fmt: skip
    if kept:
        return []
    at = promise.next_update_at
    assert at is not None
    return [
        _Due(
            Kind.PROMISED_UPDATE,
            f"promise@{ymd(at)}",
            at,
            lambda: (
                f"{promise.kind} promised to write again on {ymd(at)}; {case.tracking_phrase()}"
            ),
        )
    ]


def _going_at(entry: LoggedOutreach) -> datetime:
    """When a logged message went out, or is to go out (K1, B1, B2)."""
    return entry.sent_at or max(entry.created_at, entry.send_after or entry.created_at)


# --- Event rules (E1-E6, R1) -------------------------------------------------------------------


def _episode_dues(case: _Case) -> list[_Due]:
    """E1-E3, R1."""
    dues: list[_Due] = []
    for parcel in case.parcels:
        for kind, group, what in EPISODE_MESSAGES:
            for run in parcel.runs(group):
                dues += _run_dues(case, parcel, kind, what, run)
    return dues


def _run_dues(case: _Case, parcel: _Parcel, kind: Kind, what: str, run: _Run) -> list[_Due]:
    """E1, E2, R1 for one episode."""
    start = run.start.occurred_at
    trigger = f"{parcel.number}@{_stamp(start)}"

    def reason() -> str:
        text = f"{parcel.number} {what} since {ymd(start)}: {_event_text(run.start)}"
        if kind in (Kind.CUSTOMS_HOLD, Kind.CUSTOMS_PAYMENT_DUE):
            text += f" (customs guidance: {case.window.customs_variant})"
        return text

    dues = _episode_due(kind, trigger, start, run, reason, parcel.number)
    if kind is Kind.READY_FOR_PICKUP:
        reminder_days = case.window.tracking.pickup_reminder_days
        dues += _episode_due(
            Kind.PICKUP_REMINDER,
            trigger,
            start + reminder_days * DAY,
            run,
            lambda: (
                f"{parcel.number} still waiting for pickup after {reminder_days} days "
                f"(since {ymd(start)})"
            ),
            parcel.number,
        )
    if kind is Kind.RETURNED_TO_SENDER and run.ended_at is None:
        dues += _returned_offer(case, parcel, start)
    return dues


def _episode_due(
    kind: Kind,
    trigger: str,
    due_at: datetime,
    run: _Run,
    reason: Callable[[], str],
    number: str,
) -> list[_Due]:
    if run.ended_at is None:
        return [_Due(kind, trigger, due_at, reason, number=number)]
    if due_at < run.ended_at:  # E3
        skip = f"already over: the parcel moved on on {ymd(run.ended_at)} before this was sent"
        return [_Due(kind, trigger, due_at, reason, skip=skip, number=number)]
    return []


def _returned_offer(case: _Case, parcel: _Parcel, start: datetime) -> list[_Due]:
    """R1: a parcel coming back needs a person to choose reship or refund: the refund offer,
    awaiting their choice, is that task in the log."""
    if case.situation is not Situation.RETURNING:
        return []
    return [
        _Due(
            Kind.REFUND_OFFER,
            STAGE_TRIGGER,
            start,
            lambda: (
                f"{parcel.number} is going back to the sender since {ymd(start)}: staff choose "
                f"reship or refund; the buyer was told a person writes within "
                f"{STAFF_REPLY.days} days"
            ),
        )
    ]


def _delivered_dues(case: _Case) -> list[_Due]:
    """E4: the delivered confirmation."""
    if case.situation is not Situation.DELIVERED:
        return []
    delivered_at = _last_delivery(case)

    def reason() -> str:
        count = len(case.parcels)
        parcels = "the parcel" if count == 1 else f"all {count} parcels"
        return f"{parcels} delivered, last on {ymd(delivered_at)}; {case.tracking_phrase()}"

    return [_Due(Kind.DELIVERED, ORDER_TRIGGER, delivered_at, reason)]


def _review_dues(case: _Case) -> list[_Due]:
    """E4: the review request, some days after the delivered confirmation went out."""
    told = case.logged.get((Kind.DELIVERED, ORDER_TRIGGER))
    if told is None or told.state is not OutreachState.SENT:
        return []
    delivered_at = _last_delivery(case)
    days = case.window.tracking.review_request_days
    base = max(delivered_at, told.sent_at or told.created_at)
    return [
        _Due(
            Kind.REVIEW_REQUEST,
            ORDER_TRIGGER,
            base + days * DAY,
            lambda: f"{days} days after delivery ({ymd(delivered_at)}) and its confirmation",
        )
    ]


def _last_delivery(case: _Case) -> datetime:
    return max(p.delivered_at() or case.shipped for p in case.parcels)


def _not_found_dues(case: _Case) -> list[_Due]:
    """E5, E6."""
    dues: list[_Due] = []
    tracking = case.window.tracking
    if case.never_found:
        alert_at = case.at_day(tracking.not_found_alert_days)
        for parcel in case.never_found:
            why = "never polled yet" if parcel.current is None else "the carrier does not know it"
            text = (
                f"{parcel.number}: no tracking event {tracking.not_found_alert_days} days after "
                f"shipment ({why}); wrong or transfer number, or the parcel failed a security "
                "check?"
            )
            dues.append(
                _Due(
                    Kind.STAFF_TRACKING_NOT_FOUND,
                    parcel.number,
                    alert_at,
                    _said(text),
                    number=parcel.number,
                )
            )
        if case.situation is not Situation.DELIVERED:
            numbers = ", ".join(p.number for p in case.never_found)
            # D1, R1: the buyer is told a person writes with the options by the not-found refund
            # day; the refund offer waiting for that person's choice is queued with the notice.
            by = max(
                case.at_day(tracking.not_found_refund_days) + case.pause,
                max(alert_at, case.now) + STAFF_REPLY,
            )
            dues.append(
                _Due(
                    Kind.TRACKING_NOT_FOUND,
                    ORDER_TRIGGER,
                    alert_at,
                    lambda: (
                        f"{numbers}: no tracking event {tracking.not_found_alert_days} days "
                        "after shipment"
                    ),
                    next_update_at=by,
                )
            )
            dues.append(
                _Due(
                    Kind.REFUND_OFFER,
                    STAGE_TRIGGER,
                    alert_at,
                    lambda: (
                        f"tracking never found: {numbers} has no event "
                        f"{tracking.not_found_alert_days} days after shipment; staff choose "
                        f"reship or refund and write by {ymd(by)}, as the buyer was told"
                    ),
                )
            )
    for parcel in case.parcels:
        warning = parcel.facts.number_warning
        if warning and not parcel.events and not parcel.delivered:
            dues.append(
                _Due(
                    Kind.STAFF_INVALID_TRACKING,
                    parcel.number,
                    case.shipped,
                    _said(f"tracking number looks wrong: {warning}"),
                    number=parcel.number,
                )
            )
    return dues


def _said(text: str) -> Callable[[], str]:
    """A reason already written (a lambda in a loop would see only the last parcel's)."""
    return lambda: text


def _followed_by(why: Callable[[], str], note: str) -> Callable[[], str]:
    return lambda: why() + note


# --- From every rule's answer to what is due now -----------------------------------------------


def _logged(case: _Case, due: _Due) -> bool:
    """P4, T2: logged in any state but held."""
    entry = case.logged.get((due.kind, due.trigger))
    return entry is not None and entry.state is not OutreachState.HELD


@dataclass(frozen=True, slots=True)
class _Tracked:
    """The answers of the rules that read the order and its tracking but not the log: worked out
    once per evaluation, though the log-reading rules run twice (now, and once it is logged)."""

    stages: list[_Due]  # S1-S5
    events: list[_Due]  # E1-E6, R1

    @classmethod
    def read(cls, case: _Case) -> _Tracked:
        events = [*_episode_dues(case), *_delivered_dues(case), *_not_found_dues(case)]
        return cls(_stage_answers(case), events)


def _all_dues(case: _Case, tracked: _Tracked) -> list[_Due]:
    """Every intent some rule asks for, due or not yet, after the stop rules (P1-P4)."""
    state = case.order.state
    if state in (OrderState.DISPUTED, OrderState.CANCELLED, OrderState.CLOSED):
        return []  # P3
    rules = [
        *_stage_dues(case, tracked.stages),
        *_extension_message(case),
        *_followup_dues(case),
        *tracked.events,
        *_review_dues(case),
        *_promise_dues(case),
    ]
    # Two rules may ask for the same (kind, trigger) (a refund offer by its day and by R1): the
    # earliest moment wins.
    earliest: dict[tuple[Kind, str], _Due] = {}
    for due in rules:
        key = (due.kind, due.trigger)
        if key not in earliest or due.due_at < earliest[key].due_at:
            earliest[key] = due
    dues = list(earliest.values())
    if case.situation is Situation.DELIVERED:  # P1
        dues = [d for d in dues if d.kind not in DELAY_KINDS]
    if case.offer_live:  # P2
        dues = [d for d in dues if d.kind not in _HELD_BY_OFFER]
    if state is OrderState.OPTED_OUT:  # P3
        dues = [d for d in dues if d.kind in STAFF_KINDS]
    return [d for d in dues if not _logged(case, d)]


def _withdrawals(case: _Case) -> list[Withdrawal]:
    """W1-W4."""
    withdrawals: list[Withdrawal] = []
    open_order = case.order.state is OrderState.OPEN
    for (kind, trigger), entry in sorted(case.logged.items()):
        if entry.state not in WITHDRAWABLE_STATES or kind in STAFF_KINDS:
            continue
        if not open_order:
            withdrawals.append(Withdrawal(kind, trigger, f"order is {case.order.state}: "
                                                         "nothing more goes to the buyer"))  # fmt: skip
        elif case.situation is Situation.DELIVERED and kind in DELAY_KINDS:
            withdrawals.append(Withdrawal(kind, trigger, "every parcel is delivered: delay "
                                                         "messages stop"))  # fmt: skip
        elif kind is Kind.REFUND_OFFER and entry.state is not OutreachState.HELD:
            moved = _moved_since(case, entry.created_at)
            if moved:
                withdrawals.append(Withdrawal(kind, trigger, moved))
        elif entry.state is not OutreachState.HELD and _unfit(case, kind, entry):
            withdrawals.append(
                Withdrawal(kind, trigger, f"held: {SITUATION_WORDS[case.situation]}", hold=True)
            )
    return withdrawals


def _unfit(case: _Case, kind: Kind, entry: LoggedOutreach) -> bool:
    """W4: the situation changed under a pending message."""
    fits = FITS.get(kind)
    if fits is not None and case.situation not in fits:
        return True
    return kind is Kind.PROMISED_UPDATE and entry.situation not in (None, case.situation)


def _moved_since(case: _Case, moment: datetime) -> str:
    """W1: the newest event after `moment`, in words, or "" if the parcel has not moved."""
    newer = [(e, p) for p in case.parcels for e in p.events if e.occurred_at > moment]
    if not newer:
        return ""
    event, parcel = max(newer, key=lambda ep: ep[0].occurred_at)
    return (
        f"the parcel moved again after the offer was made: {_event_text(event)} "
        f"on {ymd(event.occurred_at)} ({parcel.number})"
    )


_NEEDS_FRESH_TRACKING = frozenset({*STAGE_KINDS, Kind.REFUND_FOLLOWUP, Kind.PROMISED_UPDATE})


def _fresh_only(case: _Case, due_now: list[_Due]) -> tuple[list[_Due], tuple[str, ...]]:
    """F1, F2: every stage-like due waits while one waits for a fresh carrier answer (holding
    only some would let a lower stage out alone, then the higher one: a burst); past the grace,
    they go with the staleness in their reason."""
    answered = [
        (at, p) for p in case.parcels if p.on_its_way and (at := p.facts.answered_at) is not None
    ]
    if not answered:
        return due_now, ()  # nothing on its way was ever answered: nothing is stale
    oldest_answer, oldest = min(answered, key=lambda a: a[0])
    waits: set[str] = set()
    noted: list[_Due] = []
    for due in due_now:
        if due.kind in _NEEDS_FRESH_TRACKING and oldest_answer < due.due_at:
            if case.now < due.due_at + STALE_GRACE:
                waits.update(p.number for at, p in answered if at < due.due_at)
                continue
            note = (
                f"; tracking may be stale: no answer from the carrier for {oldest.number} "
                f"since {ymd(oldest_answer)}"
            )
            due = replace(due, why=_followed_by(due.why, note))
        noted.append(due)
    if waits:
        return [d for d in due_now if d.kind not in _NEEDS_FRESH_TRACKING], tuple(sorted(waits))
    return noted, ()


def _catch_up(case: _Case, dues: list[_Due]) -> list[_Due]:
    """S6, S7: of the stages due now, produce only the most advanced; skip the rest."""
    walk: list[_Due] = []
    offer_goes = case.situation in FITS[Kind.REFUND_OFFER]  # else it is held (T1)
    for due in sorted(dues, key=lambda d: (d.due_at, _WALK_RANK[d.kind])):
        walk.append(due)
        if due.kind is Kind.REFUND_OFFER and not due.skip and offer_goes:
            break  # later stages are held while the offer is live (P2)
    top = 0
    contenders: list[_Due] = []
    result: list[_Due] = []
    for due in walk:
        rank = LADDER_RANK.get(due.kind)  # None: not on the ladder (the extension)
        if due.skip:
            result.append(due)
        elif rank is not None and rank < top:
            result.append(replace(due, skip="superseded by a more advanced stage due too"))
        else:
            contenders.append(due)
            top = max(top, rank or 0)
    if not contenders:
        return result
    chosen = contenders[-1]
    skip = (
        f"catch-up: {chosen.kind} (due {ymd(chosen.due_at)}) was due at the same evaluation; "
        "only the most advanced stage is sent"
    )
    return [*result, *(replace(d, skip=skip) for d in contenders[:-1]), chosen]


def _missed(case: _Case, due: _Due) -> _Due:
    """M1: old news from before the order was first seen is logged, not sent."""
    seen = case.order.first_seen_at
    if seen is None or due.kind not in _MISSED_IF_OLD or due.due_at >= seen - MISSED_GRACE:
        return due
    return replace(
        due,
        skip=f"missed: happened on {ymd(due.due_at)}, before parcelwatch first saw the order "
        f"on {ymd(seen)}",
    )


def _situation_hold(case: _Case, due: _Due) -> _Due | None:
    """T1, T2: hold a due whose kind does not fit the situation; None when it is held already."""
    fits = FITS.get(due.kind)
    if not due.skip and not due.hold and fits is not None and case.situation not in fits:
        due = replace(
            due, hold=f"held: {SITUATION_WORDS[case.situation]}; decided again when that changes"
        )
    entry = case.logged.get((due.kind, due.trigger))
    if due.hold and entry is not None and entry.state is OutreachState.HELD:
        return None  # still held, nothing to write
    return due


def _next_update(case: _Case, after: datetime) -> datetime:
    """D1: the window day of the next ladder stage still to come while the parcel is on its way,
    else UPDATE_EVERY later. The window's days, not a stall's guess: a stage that comes sooner
    writes sooner, and one held on its day leaves the promised update (K1) to keep the date."""
    soonest = after + MIN_PROMISE_AHEAD
    ahead = []
    for kind, key in STAGES if case.situation is Situation.ON_ITS_WAY else ():
        day = case.window.stage_day(key)
        if kind in LADDER_RANK and day is not None and case.live(kind) is None:
            moment = case.at_day(day) + (case.pause if kind is Kind.REFUND_OFFER else timedelta(0))
            if moment >= soonest:
                ahead.append(moment)
    return min(ahead, default=after + UPDATE_EVERY)


def _counted_moments(case: _Case) -> list[datetime]:
    """B2: when each buyer message the budget counts went out, or is to go out."""
    return sorted(
        _going_at(e)
        for e in case.logged.values()
        if e.kind in BUYER_KINDS and e.kind not in URGENT_KINDS
        and e.state in GOING_STATES
    )  # fmt: skip


def _budget_allows_at(moments: list[datetime], budget: Budget, earliest: datetime) -> datetime:
    """B2: the first moment from `earliest` at which one more message fits the budget."""
    span = budget.days * DAY
    for at in sorted([earliest, *(m + span for m in moments)]):
        if at >= earliest and sum(at - span < m <= at for m in moments) < budget.messages:
            return at
    return earliest  # unreachable: past the last moment's span nothing is counted


def _calm(case: _Case, due_now: list[_Due]) -> list[tuple[_Due, datetime, str]]:
    """B1, B2: each due with the moment it may go out and, if that is later, why; a promised
    update that another message keeps is left out."""
    now = case.now
    # What waits for a person's approval goes when they approve, not in this pass.
    sendable = [
        d
        for d in due_now
        if d.kind in BUYER_KINDS
        and not (d.skip or d.hold or d.kind.value in case.window.approval_required)
    ]
    waits: dict[int, tuple[datetime, str]] = {}
    dropped: set[int] = set()
    if sendable:
        budget = case.window.budget
        moments = _counted_moments(case)
        allowed = {
            id(d): now if d.kind in URGENT_KINDS else _budget_allows_at(moments, budget, now)
            for d in sendable
        }
        queue = sorted(
            sendable,
            key=lambda d: (allowed[id(d)], d.kind is Kind.PROMISED_UPDATE,
                           d.kind not in URGENT_KINDS, d.due_at),
        )  # fmt: skip
        previous = _last_going(case)
        going_now = False
        for due in queue:
            at, note = allowed[id(due)], ""
            if at > now:
                note = _budget_note(budget, at)
            if due.kind is Kind.PROMISED_UPDATE and going_now:
                dropped.add(id(due))  # the message going now keeps the promise
                continue
            gap = URGENT_GAP if due.kind in URGENT_KINDS else SPACING
            if previous is not None and at < previous + gap:
                at = previous + gap
                note = f"waits until {ymd(at)}: one message to a buyer at a time"
                if due.kind not in URGENT_KINDS:
                    at = _budget_allows_at(moments, budget, at)
            if due.kind not in URGENT_KINDS:
                moments = sorted([*moments, at])
            waits[id(due)] = (at, note)
            going_now = going_now or at <= now
            previous = at if previous is None else max(previous, at)
    return [(d, *waits.get(id(d), (now, ""))) for d in due_now if id(d) not in dropped]


def _last_going(case: _Case) -> datetime | None:
    """B1: when the order's latest buyer message went out or is to go out."""
    return max(
        (
            _going_at(e)
            for e in case.logged.values()
            if e.kind in BUYER_KINDS and e.state in GOING_STATES
        ),
        default=None,
    )


def _budget_note(budget: Budget, at: datetime) -> str:
    return (
        f"waits until {ymd(at)}: {budget.messages} buyer messages in {budget.days} days already "
        "(budget)"
    )


def _intents(case: _Case, due: _Due, send_at: datetime, note: str) -> Intent:
    """What is logged for a due: its state, reason and the dates the buyer will read."""
    kind = due.kind
    expected = case.at_day(case.promised) + case.pause
    next_update = due.next_update_at
    if kind is Kind.RETURNED_TO_SENDER:
        next_update = send_at + STAFF_REPLY
    elif next_update is None and kind in _PROMISING:
        next_update = _next_update(case, send_at)
    entry = case.logged.get((kind, due.trigger))
    return Intent(
        kind=kind,
        trigger=due.trigger,
        due_at=due.due_at,
        needs_approval=kind.value in case.window.approval_required,
        reason=due.why(),
        audience=kind.audience,
        situation=case.situation,
        skipped=bool(due.skip),
        skip_reason=due.skip,
        held=bool(due.hold),
        was_held=entry is not None and entry.state is OutreachState.HELD,
        tracking_number=due.number,
        next_update_at=next_update if kind in BUYER_KINDS else None,
        protection_until=due.protection_until,
        expected_by=expected if expected > send_at + DAY else None,
        send_after=send_at if send_at > case.now else None,
        note=note or due.hold,
    )


# --- The public functions ----------------------------------------------------------------------


def decide(
    order: OrderFacts,
    shipments: Sequence[ShipmentFacts],
    window: Window,
    logged: Sequence[LoggedOutreach],
    now: datetime,
) -> Decision:
    """The intents due at `now` for one order and the pending messages to withdraw or hold.

    Pure: the same arguments always give the same decision. Skipped and held intents must be
    logged (states `skipped`, `held`) so that they are never produced again, or only once they fit.
    """
    return evaluate(order, shipments, window, logged, now).decision


def next_decision_at(
    order: OrderFacts,
    shipments: Sequence[ShipmentFacts],
    window: Window,
    logged: Sequence[LoggedOutreach],
    now: datetime,
) -> datetime | None:
    """The earliest moment after `now` at which some rule could produce something, or None.

    Assumes that what `decide()` returns at `now` gets logged and goes out as planned (`as_sent`),
    and that no new tracking event arrives; a new event (or an order-state change) is a reason to decide again at once. While a
    customs payment is pending the refund offer's day slides with the clock, so it sets no time.
    """
    return evaluate(order, shipments, window, logged, now).next_at


def evaluate(
    order: OrderFacts,
    shipments: Sequence[ShipmentFacts],
    window: Window,
    logged: Sequence[LoggedOutreach],
    now: datetime,
) -> Evaluation:
    """Both answers from one reading of the order and its tracking."""
    case = _Case(order, shipments, window, logged, now)
    withdrawals = _withdrawals(case)
    if withdrawals:
        changed = {
            (w.kind, w.trigger): OutreachState.HELD if w.hold else OutreachState.WITHDRAWN
            for w in withdrawals
        }
        logged = [
            replace(e, state=changed[(e.kind, e.trigger)]) if (e.kind, e.trigger) in changed else e
            for e in logged
        ]
        case = case.with_log(logged)
    tracked = _Tracked.read(case)
    dues = _all_dues(case, tracked)
    due_now = [d for d in dues if d.due_at <= now]
    due_now, awaiting = _fresh_only(case, due_now)
    stages = _catch_up(case, [d for d in due_now if d.kind in STAGE_KINDS])
    others = [d for d in due_now if d.kind not in STAGE_KINDS]
    decided = [held for d in stages + others if (held := _situation_hold(case, _missed(case, d)))]
    intents = [_intents(case, due, at, note) for due, at, note in _calm(case, decided)]
    intents.sort(key=lambda i: (i.due_at, i.kind.value, i.trigger))
    # What falls due later once this decision is logged and what is ready goes out as planned
    # (a refund offer holds stages and starts its follow-up's clock, a delivered confirmation
    # starts the review request's, a promise its promised update).
    after = case.with_log(
        [*(_gone_out(e, now) for e in logged), *(as_sent(i, now) for i in intents)]
    )
    times = [d.due_at for d in _all_dues(after, tracked) if d.due_at > now and not d.moving]
    if awaiting:
        times.append(now + STALE_RETRY)  # F1: the poll is asked for now; look again soon
    return Evaluation(
        Decision(tuple(intents), tuple(withdrawals), awaiting), min(times, default=None)
    )


def initial_state(intent: Intent) -> OutreachState:
    """The state an intent is logged in."""
    if intent.skipped:
        return OutreachState.SKIPPED
    if intent.held:
        return OutreachState.HELD
    if intent.needs_approval:
        return OutreachState.AWAITING_APPROVAL
    return OutreachState.PLANNED


def as_sent(intent: Intent, now: datetime) -> LoggedOutreach:
    """The log row an intent becomes once it went out as planned (for the next wake time)."""
    entry = as_logged(intent, now)
    if entry.state is not OutreachState.PLANNED or intent.audience is Audience.MARKETPLACE:
        return entry  # a marketplace action is done when staff (or the API) confirm it
    return replace(entry, state=OutreachState.SENT, sent_at=intent.send_after or now)


def _gone_out(entry: LoggedOutreach, now: datetime) -> LoggedOutreach:
    """A logged buyer message ready to go, as it will be once sent (for the next wake time)."""
    if entry.state not in (OutreachState.PLANNED, OutreachState.APPROVED):
        return entry
    if entry.kind not in BUYER_KINDS:
        return entry
    return replace(entry, state=OutreachState.SENT, sent_at=max(now, entry.send_after or now))


def as_logged(intent: Intent, now: datetime) -> LoggedOutreach:
    """The log row an intent becomes when written at `now` (before anything is sent)."""
    return LoggedOutreach(
        intent.kind,
        intent.trigger,
        initial_state(intent),
        now,
        intent.due_at,
        next_update_at=intent.next_update_at,
        protection_until=intent.protection_until,
        situation=intent.situation,
        send_after=intent.send_after,
    )
