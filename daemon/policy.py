"""The policy: which messages and actions are due for one order, now, and why.

`decide()` is a pure function. It is given one order, its shipments (normalised status and tracking
events), the destination's patience `Window`, everything already in the outreach log for the order,
and the clock reading `now`; it returns the intents now due and the pending offers to withdraw. It
reads no clock, no database and no network, so the same inputs always give the same answer and every
rule below can be checked with a table of inputs. Every number comes from the `Window` (the shipped
`config.toml`), except the refund follow-up delay, which the config does not have yet
(`REFUND_FOLLOWUP_DAYS`).

Days are calendar days counted from `shipped_at`: "day 45" is `shipped_at + 45 days`. Each intent
carries a `trigger`; (kind, trigger) is unique per order in the log, and deciding again reproduces
the same trigger, so anything already logged (in any state) is never returned again.

Stage messages (trigger "stage": one of each per order)
  S1. `tracking_update`, `reassurance`, `extension` and `refund_offer` fall due on their window day
      (`stages.*`); a stage without a day is switched off for the day rule only.
  S2. The extension is two intents with one trigger: the marketplace action `extend_protection` and
      the buyer message `extension`. Protection then runs until
      shipped_at + promised_days + extension_days (promised_days: the order's own, else the
      window's). If the order's own protection ends before the window's extension day, the
      extension comes the day before protection ends. Once protection has ended it is skipped.
  S3. Customs payment pending pauses the refund clock: the time any shipment spends in
      CUSTOMS_PAYMENT_DUE (from the event that entered it to the next event with another status, or
      now; overlaps counted once) is added to the refund offer's day and to the not-found refund.
      Nothing else moves.
  S4. Stalled: a shipment still on its way whose last event is `tracking.stalled_days` old, and
      which is not waiting on the buyer (customs payment due, ready for pickup), brings
      `tracking.stalled_action` forward: that stage falls due when the threshold was crossed, if
      that is earlier than its day. It is the same stage (same trigger), so it is never sent twice.
  S5. Tracking never found: when a shipment has no event at all and its status is NOT_FOUND (or it
      was never polled), the refund offer falls due at `tracking.not_found_refund_days` (plus the
      pause), if that is earlier than its day.
  S6. The buyer ladder is tracking_update < reassurance < refund_offer. A ladder stage that falls
      due after a higher one was logged (and not rejected, withdrawn or skipped) is skipped as
      superseded: no "here is your tracking number" after a reassurance went out.
  S7. Catch-up: when several stages are due in one evaluation (daemon down, order imported late),
      they are walked in the order they fell due; only the last one is produced, the others are
      returned as skipped intents (logged, never sent). A refund offer in the walk ends it: stages
      due after the refund offer are held by rule P2, neither sent nor skipped. Never more than one
      stage is produced by one evaluation.
  S8. Refund follow-up (`refund_followup`, trigger "stage"): `REFUND_FOLLOWUP_DAYS` after the refund
      offer was sent, if the parcel is still not delivered.

Event messages (from tracking events; trigger "<tracking number>@<start of the episode>")
  E1. One message per shipment per episode, an episode being a run of consecutive events in the
      same state: `customs_hold` (CUSTOMS_HOLD), `customs_payment_due` (CUSTOMS_PAYMENT_DUE),
      `delivery_failure` (DELIVERY_FAILURE: address problem, refused), `returned_to_sender`
      (RETURNING or RETURNED), `ready_for_pickup` (AVAILABLE_FOR_PICKUP). Due when the episode began.
  E2. `pickup_reminder` (same trigger as its `ready_for_pickup`): `tracking.pickup_reminder_days`
      after the parcel became ready for pickup, while it still waits there.
  E3. An episode that is already over when first seen (the parcel moved on before any evaluation
      saw it) is returned skipped, so the log shows it was missed; a reminder whose day never came
      while the parcel waited is not returned at all.
  E4. `delivered` (trigger "order"): one per order, when every shipment is delivered; due at the
      last delivery. `review_request` (trigger "order"): `tracking.review_request_days` after the
      delivery or after the delivered confirmation was logged, whichever is later, so the two never
      go out together.
  E5. `tracking_not_found` (buyer, trigger "order") and `staff_tracking_not_found` (staff, trigger
      = tracking number, one per shipment): `tracking.not_found_alert_days` after shipment for a
      shipment with no event at all whose status is NOT_FOUND or which was never polled.
  E6. `staff_invalid_tracking` (trigger = tracking number): at once (due at shipment) when the
      number's format looks wrong, unless the carrier already reports events for it.

Stop rules
  P1. Delivered: once every shipment is delivered, no stage message, follow-up or not-found notice.
      More broadly, stage messages need at least one shipment still on its way: a parcel that is
      returning or returned gets its `returned_to_sender` message and staff decide refund or reship.
      An order with no shipment at all counts as on its way.
  P2. Refund offer: while a refund offer is logged in any state other than rejected, withdrawn or
      skipped, no more stage messages and no `tracking_not_found`; only the follow-up (S8) and the
      event messages that ask the buyer to act or tell them the parcel arrived (customs payment,
      delivery failure, pickup and its reminder, returned, delivered) still go. `customs_hold`
      (nothing for the buyer to do) and `review_request` (awkward after a refund) are held. If staff
      rejected the offer (the buyer chose to wait), the window continues: e.g. Brazil's extension on
      day 83. A refund offer produced in this evaluation skips a `tracking_not_found` due with it.
  P3. Order state: a disputed, cancelled or closed order gets nothing at all (a dispute is in
      staff's hands on the marketplace; a cancelled or closed order has nothing left to prevent).
      An opted-out order gets no buyer message and no marketplace action, but staff alerts still
      come: the seller still needs to know a tracking number is wrong.
  P4. Idempotence: anything whose (kind, trigger) is in the log is never returned again.

Fresh tracking (telling "the parcel is stuck" from "our data is stale")
  F1. Stage messages and the refund follow-up are decided on tracking at least as new as the moment
      they fell due: while a shipment still on its way was last answered by its carrier before that
      moment (a poll is late, failing, or simply has not run yet since), every stage due now waits
      and the decision names the numbers it waits for, so the caller can poll them at once.
  F2. Stale data does not silence the buyer: `STALE_GRACE` after a stage fell due it is decided on
      what we have, and its reason says since when the carrier has not answered.
  F3. Stalled (S4) means stuck as far as the carrier can tell: the threshold must be crossed by the
      time of the shipment's last answer. A crossing the carrier has not confirmed within
      `STALE_GRACE` is not a stall (the aggregator stopped, or the number changed): the stage keeps
      its window day.
  A shipment never answered yet is judged as before (the decide job waits for a first poll).

Withdrawals (decided first; the rest of the decision sees them as withdrawn)
  W1. A refund offer not yet sent (planned, awaiting approval, approved, needs review) is withdrawn
      when any shipment has an event after the offer was created (the parcel moved again, or was
      delivered).
  W2. Any pending stage message, follow-up or not-found notice is withdrawn once every shipment is
      delivered.
  W3. Any pending buyer message or marketplace action is withdrawn when the order is no longer open.
  A withdrawn refund offer is not offered again automatically (its trigger is used); the window
  continues and staff can offer one by hand.

`next_decision_at()` says when to look at the order again if no new tracking event arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from operator import attrgetter

from carriers.status import Status
from daemon.config import Window
from daemon.models import PENDING_STATES, OrderState, OutreachState
from messages.kinds import Audience, Kind

DAY = timedelta(days=1)

# Not in the Window yet; a candidate for `tracking.refund_followup_days`.
REFUND_FOLLOWUP_DAYS = 7
# F2: how long a stage waits for a fresh carrier answer before it is decided on stale data.
STALE_GRACE = timedelta(days=1)
# F1: when to look again at an order whose stages wait for a fresh answer (the poll is asked at once).
STALE_RETRY = timedelta(minutes=30)

STAGE_TRIGGER = "stage"
ORDER_TRIGGER = "order"

STAGE_KINDS = (Kind.TRACKING_UPDATE, Kind.REASSURANCE, Kind.EXTENSION, Kind.REFUND_OFFER)
# The buyer ladder (S6): a higher rung supersedes lower ones. The extension is not on it.
LADDER_RANK = {Kind.TRACKING_UPDATE: 1, Kind.REASSURANCE: 2, Kind.REFUND_OFFER: 3}
# Tie-break when two stages fall due at the same moment (S7).
_WALK_RANK = {Kind.TRACKING_UPDATE: 1, Kind.REASSURANCE: 2, Kind.EXTENSION: 3, Kind.REFUND_OFFER: 4}

# Kinds that exist only because the parcel is late; delivery stops them (P1, W2).
DELAY_KINDS = frozenset(
    {
        *STAGE_KINDS,
        Kind.EXTEND_PROTECTION,
        Kind.REFUND_FOLLOWUP,
        Kind.TRACKING_NOT_FOUND,
    }
)
# Event messages held while a refund offer is live (P2).
_HELD_BY_OFFER = frozenset({Kind.CUSTOMS_HOLD, Kind.REVIEW_REQUEST, Kind.TRACKING_NOT_FOUND})

# Logged in one of these, an outreach no longer counts (a refund offer no longer stops anything).
DEAD_STATES = frozenset({OutreachState.REJECTED, OutreachState.WITHDRAWN, OutreachState.SKIPPED})
# Not known to be sent, so still withdrawable: what would go out unless someone acts, and a send
# whose outcome a person has yet to check.
WITHDRAWABLE_STATES = PENDING_STATES | {OutreachState.NEEDS_REVIEW}

_NOT_ON_ITS_WAY = frozenset({Status.DELIVERED, Status.RETURNING, Status.RETURNED})
_WAITING_ON_BUYER = frozenset({Status.CUSTOMS_PAYMENT_DUE, Status.AVAILABLE_FOR_PICKUP})
_DELIVERED = frozenset({Status.DELIVERED})
_PAYMENT_DUE = frozenset({Status.CUSTOMS_PAYMENT_DUE})  # S3

# A member's value and a kind's audience by lookup: the enum properties cost a call each, per
# rule per order (and per log row and tracking snapshot in the decide job). Members of two enums
# with the same value are equal keys: both map to that value.
ENUM_VALUE: dict[StrEnum, str] = {
    member: member.value for enum in (Kind, Audience, OutreachState, Status) for member in enum
}
_AUDIENCE = {kind: kind.audience for kind in Kind}

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


_EPISODE_STATUSES = frozenset(
    status for _kind, group, _what in EPISODE_MESSAGES for status in group
)


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
    # When the carrier last answered for this number (F1-F3); None: never, or not known.
    answered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """The order as the policy needs it."""

    order_id: str
    country: str
    shipped_at: datetime
    promised_days: int | None = None  # the marketplace's own; None: the window's
    state: OrderState = OrderState.OPEN


@dataclass(frozen=True, slots=True)
class LoggedOutreach:
    """One row already in the outreach log for this order."""

    kind: Kind
    trigger: str
    state: OutreachState
    created_at: datetime
    due_at: datetime
    sent_at: datetime | None = None  # for the refund follow-up; falls back to due_at


# --- Outputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Intent:
    """A message or action now due (or, when `skipped`, to be logged as skipped and never sent)."""

    kind: Kind
    trigger: str
    due_at: datetime
    needs_approval: bool
    reason: str
    audience: Audience
    skipped: bool = False
    skip_reason: str = ""
    tracking_number: str | None = None  # the shipment an event message is about
    protection_until: datetime | None = None  # extension: the new end of buyer protection


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A pending outreach that must not go out any more."""

    kind: Kind
    trigger: str
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    intents: tuple[Intent, ...] = ()
    withdrawals: tuple[Withdrawal, ...] = ()
    # F1: tracking numbers whose fresh answer the stages due now wait for.
    awaiting_tracking: tuple[str, ...] = ()


# --- Reading the tracking ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Run:
    """An episode: consecutive events of one shipment in one group of statuses."""

    start: EventFacts
    ended_at: datetime | None  # None: the shipment is still in this state


# Time order; a Status is a str, so it sorts by its value. An attrgetter, not a function: it
# runs for every event of every order decided.
_event_order = attrgetter("occurred_at", "status", "raw_code", "description")
_status_of = attrgetter("status")


class _Parcel:
    """A shipment with its events in time order and the episodes read from them."""

    __slots__ = ("_statuses", "current", "delivered", "events", "facts", "has_episodes",
                 "last_event", "never_found", "number", "on_its_way")  # fmt: skip

    def __init__(self, facts: ShipmentFacts) -> None:
        self.facts = facts
        self.number = facts.tracking_number
        self.events = events = tuple(sorted(facts.events, key=_event_order))
        self.last_event: EventFacts | None = events[-1] if events else None
        current = facts.status
        if current is None and events:
            current = events[-1].status
        self.current: Status | None = current
        self._statuses = statuses = frozenset(map(_status_of, events))
        self.on_its_way = current not in _NOT_ON_ITS_WAY
        self.delivered = current is Status.DELIVERED
        self.never_found = not events and current in (None, Status.NOT_FOUND)
        # Whether any event is in an episode state (E1): most parcels only ever move on.
        self.has_episodes = not statuses.isdisjoint(_EPISODE_STATUSES)

    def runs(self, group: frozenset[Status]) -> list[_Run]:
        if self._statuses.isdisjoint(group):
            return []  # the common case (a parcel in transit): no episode of this kind
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
        runs = self.runs(_DELIVERED)
        if runs and runs[-1].ended_at is None:
            return runs[-1].start.occurred_at
        if self.events:
            return self.events[-1].occurred_at
        return self.facts.first_polled_at


def customs_pause(shipments: Iterable[ShipmentFacts], now: datetime) -> timedelta:
    """Time spent waiting for the buyer to pay customs (S3), overlaps between shipments once."""
    total, _running = _customs_pause([_Parcel(s) for s in shipments], now)
    return total


def _customs_pause(parcels: Sequence[_Parcel], now: datetime) -> tuple[timedelta, bool]:
    spans: list[tuple[datetime, datetime]] = []
    running = False
    for parcel in parcels:
        for run in parcel.runs(_PAYMENT_DUE):
            start = run.start.occurred_at
            end = now if run.ended_at is None else min(run.ended_at, now)
            if run.ended_at is None and start <= now:
                running = True
            if end > start:
                spans.append((start, end))
    total = timedelta(0)
    if not spans:
        return total, running  # the common case: no customs payment asked
    cursor: datetime | None = None
    for start, end in sorted(spans):
        if cursor is not None and start < cursor:
            start = cursor
        if end > start:
            total += end - start
        cursor = end if cursor is None else max(cursor, end)
    return total, running


# --- The order as a whole ----------------------------------------------------------------------


# A reason, formatted only if its intent is produced: most dues of an evaluation lie in the future
# and only set the next wake time, and formatting dates is most of a rule's cost.
_Reason = Callable[[], str]


@dataclass(slots=True)  # not frozen, which makes building one 5x slower; never mutated: `replace`
class _Due:
    """A rule's answer before catch-up: what, when, why."""

    kind: Kind
    trigger: str
    due_at: datetime
    reason: _Reason
    skip_reason: str = ""
    tracking_number: str | None = None
    protection_until: datetime | None = None
    moving: bool = False  # due_at slides with the clock (the customs pause is running)

    def skipped(self, skip_reason: str) -> _Due:
        """This due with a skip reason: `dataclasses.replace` costs ten times more."""
        return _Due(self.kind, self.trigger, self.due_at, self.reason, skip_reason,
                    self.tracking_number, self.protection_until, self.moving)  # fmt: skip

    def because(self, reason: _Reason) -> _Due:
        """This due with another reason."""
        return _Due(self.kind, self.trigger, self.due_at, reason, self.skip_reason,
                    self.tracking_number, self.protection_until, self.moving)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _StagePlan:
    """What S1, S2 and S4 read from the window for one stage, for one promised_days."""

    kind: Kind
    window_day: int | None  # `stages.<kind>`; None: no day rule for this stage (S1)
    day: int | None  # the day it falls due by S1, or by S2 the day before protection ends
    brought: bool  # S2 moved the day
    stall_brings: bool  # S4: `tracking.stalled_action` is this stage


class _WindowPlan:
    """The window's numbers as the rules use them, worked out once per window and promised_days
    (`_plan_for`) rather than once per stage per order: reading a pydantic model's fields and
    deriving the stage days was a fifth of evaluating an order."""

    __slots__ = ("needs_approval", "stages", "stall_limit")

    def __init__(self, window: Window, promised: int) -> None:
        stages = []
        for kind in STAGE_KINDS:
            window_day = window.stage_day(ENUM_VALUE[kind])
            # S2: the window's day, or the day before this order's own protection ends.
            brought = kind is Kind.EXTENSION and window_day is not None and window_day >= promised
            day = max(promised - 1, 0) if brought else window_day
            stages.append(
                _StagePlan(
                    kind,
                    window_day,
                    day,
                    brought,
                    window.tracking.stalled_action == ENUM_VALUE[kind],
                )
            )
        self.stages = tuple(stages)
        self.needs_approval = frozenset(
            kind for kind in Kind if ENUM_VALUE[kind] in window.approval_required
        )
        self.stall_limit = window.tracking.stalled_days * DAY  # S4


# By the window's identity: hashing a pydantic model hashes every field. The entry holds the
# window, so its id is not reused while the entry is here.
_PLANS: dict[tuple[int, int], tuple[Window, _WindowPlan]] = {}
_PLANS_KEPT = 256


def _plan_for(window: Window, promised: int) -> _WindowPlan:
    entry = _PLANS.get((id(window), promised))
    if entry is not None:
        return entry[1]
    if len(_PLANS) >= _PLANS_KEPT:
        _PLANS.clear()
    plan = _WindowPlan(window, promised)
    _PLANS[(id(window), promised)] = (window, plan)
    return plan


class _Case:
    """Everything the rules look at, computed once."""

    def __init__(
        self,
        order: OrderFacts,
        shipments: Sequence[ShipmentFacts],
        window: Window,
        logged: Sequence[LoggedOutreach],
        now: datetime,
    ) -> None:
        self.order = order
        self.window = window
        self.now = now
        self.shipped = order.shipped_at
        self.promised = order.promised_days or window.promised_days
        self.plan = _plan_for(window, self.promised)
        self.parcels = parcels = [_Parcel(s) for s in shipments]
        self._read_log(logged)
        self.pause, self.pause_running = _customs_pause(parcels, now)
        # One walk over the parcels for the order-level facts (an order has one or two).
        all_delivered = bool(parcels)
        any_on_its_way = not parcels
        never_found: list[_Parcel] = []
        # The latest event of any parcel (the first parcel's on a tie), for the reasons.
        latest: tuple[_Parcel, EventFacts] | None = None
        # S4: when the earliest stalled shipment crossed `stalled_days` without news.
        stall: tuple[datetime, _Parcel] | None = None
        limit = self.plan.stall_limit
        # The shipment on its way answered longest ago (the first on a tie) and its answer:
        # `stale_for(moment)` finds some shipment exactly when that answer is before `moment`, and
        # this shipment is then the one of them answered longest ago.
        oldest: datetime | None = None
        oldest_answered: _Parcel | None = None
        for p in parcels:
            if not p.delivered:
                all_delivered = False
            if p.on_its_way:
                any_on_its_way = True
                answered = p.facts.answered_at
                if answered is not None and (oldest is None or answered < oldest):
                    oldest, oldest_answered = answered, p
            if p.never_found:
                never_found.append(p)
            last = p.last_event
            if last is None:
                continue
            if latest is None or last.occurred_at > latest[1].occurred_at:
                latest = (p, last)
            if p.on_its_way and p.current not in _WAITING_ON_BUYER:
                crossed = last.occurred_at + limit
                if stall is None or crossed < stall[0]:
                    stall = (crossed, p)
        self.all_delivered = all_delivered
        self.any_on_its_way = any_on_its_way
        self.never_found = never_found
        self.latest_event = latest
        self.stall = stall
        self.oldest_answered = oldest_answered
        self._tracking_phrase: str | None = None
        # The answers of rules that read no log, shared with re-logged copies (see `relogged`).
        self._tracking_dues: dict[Callable[[_Case], list[_Due]], list[_Due]] = {}

    def relogged(self, logged: Iterable[LoggedOutreach]) -> _Case:
        """The same order and tracking with another log, without reading the tracking again."""
        case = _Case.__new__(_Case)  # a shallow copy; copy.copy costs several times more
        case.__dict__.update(self.__dict__)
        case._read_log(logged)
        return case

    def forget(self) -> None:
        """Drop the rules' answers (this case's and its copies'): their reasons' closures refer to
        the case, a cycle only the garbage collector would free, thousands of objects a second."""
        self._tracking_dues.clear()

    def from_tracking(self, rule: Callable[[_Case], list[_Due]]) -> list[_Due]:
        """`rule(self)` for a rule that reads no log, computed once for this case and its
        re-logged copies."""
        dues = self._tracking_dues.get(rule)
        if dues is None:
            dues = self._tracking_dues[rule] = rule(self)
        return dues

    # Order-level facts

    def live(self, kind: Kind, trigger: str = STAGE_TRIGGER) -> LoggedOutreach | None:
        entry = self.logged.get((kind, trigger))
        return entry if entry is not None and entry.state not in DEAD_STATES else None

    def _read_log(self, logged: Iterable[LoggedOutreach]) -> None:
        self.logged = {(entry.kind, entry.trigger): entry for entry in logged}
        # A refund offer is logged and was not rejected, withdrawn or skipped (P2).
        self.offer_live = False
        for entry in self.logged.values():
            if entry.kind is Kind.REFUND_OFFER and entry.state not in DEAD_STATES:
                self.offer_live = True
                break

    def day(self, moment: datetime) -> int:
        return (moment - self.shipped) // DAY

    def at_day(self, day: int) -> datetime:
        return self.shipped + day * DAY

    @property
    def tracking_phrase(self) -> str:
        """`last event 12 days ago: 'Encaminhado...' in CURITIBA`, for staff reading the log."""
        if self._tracking_phrase is None:
            latest = self.latest_event
            if latest is None:
                phrase = "no tracking event yet"
            else:
                parcel, event = latest
                phrase = f"last event {_ago(self.now - event.occurred_at)}: {_event_text(event)}"
                if len(self.parcels) > 1:
                    phrase += f" ({parcel.number})"
            self._tracking_phrase = phrase
        return self._tracking_phrase

    def stale_for(self, moment: datetime) -> list[_Parcel]:
        """Shipments on their way whose carrier last answered before `moment` (F1)."""
        return [
            p
            for p in self.parcels
            if p.on_its_way and p.facts.answered_at is not None and p.facts.answered_at < moment
        ]


def _ago(delta: timedelta) -> str:
    days = max(delta // DAY, 0)
    if days == 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days} days ago"


def _event_text(event: EventFacts) -> str:
    text = repr(event.description) if event.description else ENUM_VALUE[event.status]
    if event.location:
        text += f" in {event.location}"
    return text


def ymd(moment: datetime) -> str:
    """`moment` as YYYY-MM-DD, for reasons and notes: isoformat is the same text as strftime's
    %Y-%m-%d from year 1000 on, several times faster."""
    return moment.date().isoformat() if moment.year >= 1000 else moment.strftime("%Y-%m-%d")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _days(delta: timedelta) -> str:
    days = delta / DAY
    return f"{days:.0f}" if days == int(days) else f"{days:.1f}"


# --- The rules ---------------------------------------------------------------------------------


def _stage_dues(case: _Case) -> list[_Due]:
    """S1-S6, P1, P2: each stage with the earliest moment some rule makes it due."""
    if not case.any_on_its_way or case.all_delivered or case.offer_live:
        return []
    logged = case.logged
    if not logged:
        return case.from_tracking(_stage_answers)  # nothing logged to take out or supersede
    dues: list[_Due] = []
    # The live ladder entries, lowest rung first, looked up once for the four stages.
    ladder = [(rank, entry) for higher, rank in LADDER_RANK.items() if (entry := case.live(higher))]
    for due in case.from_tracking(_stage_answers):
        if (due.kind, STAGE_TRIGGER) in logged:
            continue
        superseded = _superseded_by(ladder, due.kind) if ladder else None
        if superseded is not None:
            due = due.skipped(f"superseded: {superseded.kind} was already logged for this order")
        dues.append(due)
    return dues


def _stage_answers(case: _Case) -> list[_Due]:
    """S1-S5 for every stage that falls due at all (they read no log), in STAGE_KINDS order."""
    return [due for plan in case.plan.stages if (due := _stage_due(case, plan)) is not None]


# The rule that set a stage's moment (`_stage_due`), for its reason.
_BY_DAY, _BY_STALL, _BY_NOT_FOUND = 1, 2, 3


def _stage_due(case: _Case, plan: _StagePlan) -> _Due | None:
    """S1-S5 for one stage: the earliest moment some rule makes it due.

    Three rules can set the moment: the window's day (S1, S2, S3), a stall (S4) and tracking never
    found (S5); the first of the earliest wins. Only the winner's reason is built, and only when
    the stage is produced: this runs for every stage of every order decided.
    """
    kind = plan.kind
    refund = kind is Kind.REFUND_OFFER
    due_at: datetime | None = None
    rule = 0
    if plan.day is not None:
        due_at = case.at_day(plan.day)
        if refund and case.pause:
            due_at += case.pause
        rule = _BY_DAY
    stall = case.stall
    if (
        stall is not None
        and plan.stall_brings
        and (due_at is None or stall[0] < due_at)
        and _confirmed(case)
    ):
        due_at, rule = stall[0], _BY_STALL
    if refund and case.never_found:
        found_at = case.at_day(case.window.tracking.not_found_refund_days) + case.pause
        if due_at is None or found_at < due_at:
            due_at, rule = found_at, _BY_NOT_FOUND
    if due_at is None:
        return None
    # A partial rather than a closure per rule: building one costs no Python call.
    why = partial(_stage_reason, case, plan, rule)
    moving = rule != _BY_STALL and refund and case.pause_running
    if kind is Kind.EXTENSION:
        return _extension(case, due_at, why, moving)
    return _Due(kind, STAGE_TRIGGER, due_at, why, moving=moving)


def _stage_reason(case: _Case, plan: _StagePlan, rule: int) -> str:
    """Why a stage is due: the rule that set its moment, then the tracking as it stands."""
    if rule == _BY_DAY:
        why = _day_reason(case, plan)
    elif rule == _BY_STALL:
        why = _stall_reason(case, plan)
    else:
        why = _not_found_reason(case)
    return f"{why}; {case.tracking_phrase}"


def _paused(case: _Case, kind: Kind) -> str:
    if kind is Kind.REFUND_OFFER and case.pause:
        return f"; refund clock paused {_days(case.pause)} days while customs payment was due"
    return ""


def _day_reason(case: _Case, plan: _StagePlan) -> str:
    """S1, S2: the window's day for the stage."""
    label = f"{case.order.country} {plan.kind} at {plan.window_day}"
    if plan.brought:
        label += f", brought to day {plan.day}: this order's protection ends on day {case.promised}"
    return f"day {case.day(case.now)} after shipment ({label}){_paused(case, plan.kind)}"


def _stall_reason(case: _Case, plan: _StagePlan) -> str:
    """S4: the stall that brought the stage forward."""
    assert case.stall is not None
    crossed, parcel = case.stall
    last = parcel.last_event
    assert last is not None
    return (
        f"stalled: no new event on {parcel.number} for {case.window.tracking.stalled_days} days "
        f"since {ymd(last.occurred_at)} (threshold crossed {ymd(crossed)}), {plan.kind} "
        "brought forward"
        + (f" from day {plan.day}" if plan.day is not None else "")
        + (
            "; the carrier stopped reporting, so our data may be stale"
            if parcel.current is Status.EXPIRED
            else ""
        )
    )


def _not_found_reason(case: _Case) -> str:
    """S5: tracking never found."""
    return (
        f"tracking never found: {', '.join(p.number for p in case.never_found)} has no event "
        f"{case.window.tracking.not_found_refund_days} days after shipment "
        f"({case.order.country} not_found_refund_days){_paused(case, Kind.REFUND_OFFER)}"
    )


def _confirmed(case: _Case) -> bool:
    """F3: a stall the carrier has not confirmed by an answer after its crossing, within the
    grace, is stale data rather than a stuck parcel."""
    assert case.stall is not None
    crossed, parcel = case.stall
    answered = parcel.facts.answered_at
    return answered is None or answered >= crossed or case.now < crossed + STALE_GRACE


def _extension(case: _Case, due_at: datetime, why: _Reason, moving: bool) -> _Due:
    """S2: the new protection end, and no extension once protection has run out."""
    ends = case.at_day(case.promised)
    until = ends + case.window.extension_days * DAY
    return _Due(
        Kind.EXTENSION,
        STAGE_TRIGGER,
        due_at,
        partial(_extended, case, why, until),
        f"protection already ended on {ymd(ends)}" if case.now >= ends else "",
        None,
        until,
        moving,
    )


def _extended(case: _Case, why: _Reason, until: datetime) -> str:
    return f"{why()}; protection extended by {case.window.extension_days} days to {ymd(until)}"


def _superseded_by(
    ladder: Sequence[tuple[int, LoggedOutreach]], kind: Kind
) -> LoggedOutreach | None:
    """The first live entry of `ladder` on a higher rung than `kind` (S6)."""
    rank = LADDER_RANK.get(kind)
    if rank is None:
        return None
    for higher_rank, entry in ladder:
        if higher_rank > rank:
            return entry
    return None


def _followup_dues(case: _Case) -> list[_Due]:
    """S8."""
    offer = case.logged.get((Kind.REFUND_OFFER, STAGE_TRIGGER))
    if offer is None or offer.state is not OutreachState.SENT or case.all_delivered:
        return []
    sent = offer.sent_at or offer.due_at
    return [
        _Due(
            Kind.REFUND_FOLLOWUP,
            STAGE_TRIGGER,
            sent + REFUND_FOLLOWUP_DAYS * DAY,
            lambda: (
                f"refund offer sent {ymd(sent)}, {REFUND_FOLLOWUP_DAYS} days without "
                f"delivery; {case.tracking_phrase}"
            ),
        )
    ]


def _episode_dues(case: _Case) -> list[_Due]:
    """E1-E3."""
    dues: list[_Due] = []
    for parcel in case.parcels:
        if not parcel.has_episodes:
            continue
        for kind, group, what in EPISODE_MESSAGES:
            for run in parcel.runs(group):
                dues += _run_dues(case, parcel, kind, what, run)
    return dues


def _run_dues(case: _Case, parcel: _Parcel, kind: Kind, what: str, run: _Run) -> list[_Due]:
    """E1, E2 for one episode."""
    start = run.start.occurred_at
    trigger = f"{parcel.number}@{_stamp(start)}"

    def reason() -> str:
        text = f"{parcel.number} {what} since {ymd(start)}: {_event_text(run.start)}"
        if kind is Kind.CUSTOMS_HOLD or kind is Kind.CUSTOMS_PAYMENT_DUE:
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
                f"{parcel.number} still waiting for pickup after {reminder_days} "
                f"days (since {ymd(start)})"
            ),
            parcel.number,
        )
    return dues


def _episode_due(
    kind: Kind, trigger: str, due_at: datetime, run: _Run, reason: _Reason, number: str
) -> list[_Due]:
    if run.ended_at is None:
        return [_Due(kind, trigger, due_at, reason, tracking_number=number)]
    if due_at < run.ended_at:
        return [
            _Due(
                kind,
                trigger,
                due_at,
                reason,
                skip_reason=f"already over: the parcel moved on on {ymd(run.ended_at)} "
                "before this was sent",
                tracking_number=number,
            )
        ]
    return []


def _delivered_dues(case: _Case) -> list[_Due]:
    """E4."""
    if not case.all_delivered:
        return []
    moments = [p.delivered_at() or case.shipped for p in case.parcels]
    delivered_at = max(moments)

    def reason() -> str:
        latest = case.latest_event
        where = f": {_event_text(latest[1])}" if latest is not None else ""
        count = len(case.parcels)
        parcels = "the parcel" if count == 1 else f"all {count} parcels"
        return f"{parcels} delivered, last on {ymd(delivered_at)}{where}"

    dues = [_Due(Kind.DELIVERED, ORDER_TRIGGER, delivered_at, reason)]
    confirmed = case.logged.get((Kind.DELIVERED, ORDER_TRIGGER))
    if confirmed is not None:
        days = case.window.tracking.review_request_days
        base = max(delivered_at, confirmed.created_at)
        dues.append(
            _Due(
                Kind.REVIEW_REQUEST,
                ORDER_TRIGGER,
                base + days * DAY,
                lambda: f"{days} days after delivery ({ymd(delivered_at)}) and its confirmation",
            )
        )
    return dues


def _not_found_dues(case: _Case) -> list[_Due]:
    """E5, E6 (staff alerts and the buyer notice)."""
    dues: list[_Due] = []
    missing = case.never_found
    if missing:
        alert_days = case.window.tracking.not_found_alert_days
        alert_at = case.at_day(alert_days)
        for parcel in missing:
            why = "never polled yet" if parcel.current is None else "the carrier does not know it"
            dues.append(
                _Due(
                    Kind.STAFF_TRACKING_NOT_FOUND,
                    parcel.number,
                    alert_at,
                    _text(
                        f"{parcel.number}: no tracking event {alert_days} days after shipment "
                        f"({why}); wrong or transfer number, or the parcel failed a security "
                        "check?"
                    ),
                    tracking_number=parcel.number,
                )
            )
        if not case.all_delivered:
            dues.append(
                _Due(
                    Kind.TRACKING_NOT_FOUND,
                    ORDER_TRIGGER,
                    alert_at,
                    lambda: (
                        f"{', '.join(p.number for p in missing)}: no tracking event {alert_days} "
                        "days after shipment"
                    ),
                )
            )
    for parcel in case.parcels:
        if parcel.facts.number_warning and not parcel.events and not parcel.delivered:
            dues.append(
                _Due(
                    Kind.STAFF_INVALID_TRACKING,
                    parcel.number,
                    case.shipped,
                    _text(f"tracking number looks wrong: {parcel.facts.number_warning}"),
                    tracking_number=parcel.number,
                )
            )
    return dues


def _text(text: str) -> _Reason:
    """A reason already formatted (a loop's lambda would see only the last parcel)."""
    return lambda: text


def _all_dues(case: _Case) -> list[_Due]:
    """Every intent some rule asks for, due or not yet, after the stop rules (P1-P4)."""
    state = case.order.state
    if state in (OrderState.DISPUTED, OrderState.CANCELLED, OrderState.CLOSED):
        return []
    dues = [*_stage_dues(case), *_followup_dues(case)]
    dues += case.from_tracking(_episode_dues)
    dues += _delivered_dues(case)
    dues += case.from_tracking(_not_found_dues)
    if case.offer_live:
        dues = [d for d in dues if d.kind not in _HELD_BY_OFFER]
    if state is OrderState.OPTED_OUT:
        dues = [d for d in dues if _AUDIENCE[d.kind] is Audience.STAFF]
    if not case.logged:
        return dues
    return [d for d in dues if (d.kind, d.trigger) not in case.logged]


def _withdrawals(case: _Case) -> list[Withdrawal]:
    """W1-W3."""
    if not case.logged:
        return []  # nothing logged, nothing to withdraw
    withdrawals: list[Withdrawal] = []
    open_order = case.order.state is OrderState.OPEN
    for (kind, trigger), entry in sorted(case.logged.items()):
        if entry.state not in WITHDRAWABLE_STATES or _AUDIENCE[kind] is Audience.STAFF:
            continue
        if not open_order:
            reason = f"order is {case.order.state}: nothing more goes to the buyer"
        elif case.all_delivered and kind in DELAY_KINDS:
            reason = "every parcel is delivered: delay messages stop"
        elif kind is Kind.REFUND_OFFER and (moved := _moved_since(case, entry.created_at)):
            reason = moved
        else:
            continue
        withdrawals.append(Withdrawal(kind, trigger, reason))
    return withdrawals


def _moved_since(case: _Case, moment: datetime) -> str:
    newer = [
        (event, parcel)
        for parcel in case.parcels
        for event in parcel.events
        if event.occurred_at > moment
    ]
    if not newer:
        return ""
    event, parcel = max(newer, key=lambda ep: ep[0].occurred_at)
    return (
        f"the parcel moved again after the offer was made: {_event_text(event)} "
        f"on {ymd(event.occurred_at)} ({parcel.number})"
    )


_NEEDS_FRESH_TRACKING = frozenset({*STAGE_KINDS, Kind.REFUND_FOLLOWUP})


def _fresh_only(case: _Case, due_now: list[_Due]) -> tuple[list[_Due], tuple[str, ...]]:
    """F1, F2: hold every stage due now while one waits for a fresh carrier answer (holding only
    some would let a lower stage out alone, then the higher one after it: a burst); past the
    grace, let them through with the staleness in their reason."""
    parcel = case.oldest_answered
    if parcel is None:
        return due_now, ()  # no shipment on its way was ever answered: nothing is stale (F1)
    oldest_answer = parcel.facts.answered_at
    assert oldest_answer is not None
    waits: set[str] = set()
    stale: list[int] = []  # the dues decided on stale tracking (F2), by index
    for i, due in enumerate(due_now):
        # Otherwise some shipment on its way was last answered before the due fell due.
        if due.kind not in _NEEDS_FRESH_TRACKING or oldest_answer >= due.due_at:
            continue
        if case.now < due.due_at + STALE_GRACE:
            waits.update(p.number for p in case.stale_for(due.due_at))
        else:
            stale.append(i)
    if waits:
        others = [d for d in due_now if d.kind not in _NEEDS_FRESH_TRACKING]
        return others, tuple(sorted(waits))
    if not stale:
        return due_now, ()
    # Every stale due names the same shipment: of those answered before it, the one answered
    # longest ago.
    note = (
        f"; tracking may be stale: no answer from the carrier for {parcel.number} "
        f"since {ymd(oldest_answer)}"
    )
    noted = list(due_now)
    for i in stale:
        noted[i] = due_now[i].because(partial(_noted, due_now[i].reason, note))
    return noted, ()


def _noted(why: _Reason, note: str) -> str:
    return why() + note


def _catch_up(dues: list[_Due]) -> list[_Due]:
    """S6, S7: of the stages due now, produce only the most advanced; skip the rest."""
    if len(dues) < 2:
        return dues  # nothing to catch up on
    walk: list[_Due] = []
    for due in sorted(dues, key=lambda d: (d.due_at, _WALK_RANK[d.kind])):
        walk.append(due)
        if due.kind is Kind.REFUND_OFFER and not due.skip_reason:
            break  # later stages are held while the offer is live (P2)
    top = 0
    contenders: list[_Due] = []
    result: list[_Due] = []
    for due in walk:
        rank = LADDER_RANK.get(due.kind)
        if due.skip_reason:
            result.append(due)
        elif rank is not None and rank < top:
            result.append(due.skipped("superseded by a more advanced stage due too"))
        else:
            contenders.append(due)
            top = max(top, rank or 0)
    if not contenders:
        return result
    chosen = contenders[-1]
    for due in contenders[:-1]:
        result.append(
            due.skipped(
                f"catch-up: {chosen.kind} (due {ymd(chosen.due_at)}) was due at the "
                "same evaluation; only the most advanced stage is sent",
            )
        )
    result.append(chosen)
    return result


def _intents(case: _Case, due: _Due) -> list[Intent]:
    kinds = _EXTENSION_KINDS if due.kind is Kind.EXTENSION else (due.kind,)
    reason = due.reason()
    needs_approval = case.plan.needs_approval
    # Positional: keywords cost a third more, for ten fields (in Intent's order).
    return [
        Intent(
            kind,
            due.trigger,
            due.due_at,
            kind in needs_approval,
            reason,
            _AUDIENCE[kind],
            bool(due.skip_reason),
            due.skip_reason,
            due.tracking_number,
            due.protection_until,
        )
        for kind in kinds
    ]


# S2: the extension is a marketplace action and a buyer message.
_EXTENSION_KINDS = (Kind.EXTEND_PROTECTION, Kind.EXTENSION)


# --- The public functions ----------------------------------------------------------------------


def decide(
    order: OrderFacts,
    shipments: Sequence[ShipmentFacts],
    window: Window,
    logged: Sequence[LoggedOutreach],
    now: datetime,
) -> Decision:
    """The intents due at `now` for one order and the pending offers to withdraw.

    Pure: the same arguments always give the same decision. Skipped intents must be logged (state
    `skipped`) so that they are never produced again.
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

    Assumes that what `decide()` returns at `now` gets logged, and that no new tracking event
    arrives; a new event (or an order-state change) is a reason to decide again at once. While a
    customs payment is pending the refund offer's day slides with the clock, so it sets no time.
    """
    return evaluate(order, shipments, window, logged, now).next_at


@dataclass(frozen=True, slots=True)
class Evaluation:
    """`decide()` and `next_decision_at()` for the same arguments."""

    decision: Decision
    next_at: datetime | None


def evaluate(
    order: OrderFacts,
    shipments: Sequence[ShipmentFacts],
    window: Window,
    logged: Sequence[LoggedOutreach],
    now: datetime,
) -> Evaluation:
    """Both answers from one reading of the order and its tracking, for the decide job, which
    needs both for every order and cannot afford to read the tracking twice."""
    case = _Case(order, shipments, window, logged, now)
    withdrawals = _withdrawals(case)
    if withdrawals:
        gone = {(w.kind, w.trigger) for w in withdrawals}
        logged = [
            replace(e, state=OutreachState.WITHDRAWN) if (e.kind, e.trigger) in gone else e
            for e in logged
        ]
        case = case.relogged(logged)
    dues = _all_dues(case)
    due_now = [d for d in dues if d.due_at <= now]
    due_now, awaiting = _fresh_only(case, due_now)
    stages: list[_Due] = []
    others: list[_Due] = []
    for due in due_now:
        (stages if due.kind in STAGE_KINDS else others).append(due)
    stages = _catch_up(stages)
    if any(d.kind is Kind.REFUND_OFFER and not d.skip_reason for d in stages):
        others = [
            due.skipped("superseded by the refund offer decided now")
            if due.kind is Kind.TRACKING_NOT_FOUND and not due.skip_reason
            else due
            for due in others
        ]
    intents = [intent for due in stages + others for intent in _intents(case, due)]
    if len(intents) > 1:
        intents.sort(key=lambda i: (i.due_at, ENUM_VALUE[i.kind], i.trigger))
    # What is due later, once this decision is in the log (a refund offer holds stages, a
    # delivered confirmation starts the review request's clock).
    if any(intent.kind in _RELOG_CHANGES for intent in intents):
        after = case.relogged([*logged, *(as_logged(intent, now) for intent in intents)])
        times = [d.due_at for d in _all_dues(after) if d.due_at > now and not d.moving]
    elif intents:  # logging them only removes their own dues (all due by now)
        added = {(intent.kind, intent.trigger) for intent in intents}
        times = [
            d.due_at
            for d in dues
            if d.due_at > now and not d.moving and (d.kind, d.trigger) not in added
        ]
    else:  # nothing is added to the log: the rules answer as they just did
        times = [d.due_at for d in dues if d.due_at > now and not d.moving]
    if awaiting:
        times.append(now + STALE_RETRY)  # F1: the poll is asked for now; look again soon
    case.forget()
    return Evaluation(
        Decision(tuple(intents), tuple(withdrawals), awaiting), min(times, default=None)
    )


# Kinds whose log entry changes what other rules answer: a refund offer holds the stages and
# notices (P2) and starts its follow-up's clock (S8); the delivered confirmation starts the review
# request's (E4). Any other entry only takes its own (kind, trigger) out (P4); a stage on the
# ladder only makes lower ones skipped (S6), which moves no due time.
_RELOG_CHANGES = frozenset({Kind.REFUND_OFFER, Kind.DELIVERED})


def as_logged(intent: Intent, now: datetime) -> LoggedOutreach:
    """The log row an intent becomes when written at `now` (before anything is sent)."""
    if intent.skipped:
        state = OutreachState.SKIPPED
    elif intent.needs_approval:
        state = OutreachState.AWAITING_APPROVAL
    else:
        state = OutreachState.PLANNED
    return LoggedOutreach(intent.kind, intent.trigger, state, now, intent.due_at)
