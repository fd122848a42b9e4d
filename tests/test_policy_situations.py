"""What a message may say in each of the buyer's situations, and the promises around it.

The table in `daemon/policy.py` (T1) is tested cell by cell: each stage-like kind is made due in
each situation, and the decision must send it, hold it or not produce it, as the table says. The
other tests pin the rules that keep messages true: the extension only once done (X1), promised
dates kept (K1, D1), one message at a time and the budget (B1, B2), a backlog's old news (M1).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from carriers.status import Status
from daemon.config import Window
from daemon.models import OutreachState
from daemon.policy import (
    FITS,
    MIN_PROMISE_AHEAD,
    SPACING,
    STAFF_REPLY,
    Decision,
    Intent,
    LoggedOutreach,
    ShipmentFacts,
    decide,
)
from messages.context import MessageContext
from messages.kinds import Audience, Kind, Situation
from messages.phrases import ON_ITS_WAY, REMEDIES, found
from messages.remedies import Remedies
from messages.render import render
from tests.policy_support import (
    NUMBER,
    OTHER_NUMBER,
    SHIPPED,
    Log,
    day,
    ev,
    every_day,
    logged,
    moving,
    order,
    shipment,
    simulate,
    window,
)

BR = window("BR")
RU = window("RU")

# A shipment in each situation on day 70, with events up to then (so the tracking is fresh).
_LATE = (2, 10, 20, 30, 40, 50, 60)
SITUATION_PARCELS: dict[Situation, list[ShipmentFacts]] = {
    Situation.ON_ITS_WAY: [shipment(*moving(*_LATE, 69))],
    Situation.AWAITING_CUSTOMS_PAYMENT: [
        shipment(*moving(*_LATE), ev(69, Status.CUSTOMS_PAYMENT_DUE, "Aguardando pagamento"))
    ],
    Situation.DELIVERY_FAILED: [
        shipment(*moving(*_LATE), ev(69, Status.DELIVERY_FAILURE, "Endereço incorreto"))
    ],
    Situation.AT_PICKUP_POINT: [
        shipment(*moving(*_LATE), ev(69, Status.AVAILABLE_FOR_PICKUP, "Aguardando retirada"))
    ],
    Situation.NEVER_FOUND: [shipment(status=Status.NOT_FOUND)],
    Situation.RETURNING: [shipment(*moving(*_LATE), ev(69, Status.RETURNING, "Devolvido"))],
    Situation.DELIVERED: [shipment(*moving(*_LATE), ev(69, Status.DELIVERED, "Entregue"))],
}
# What each kind needs in the log to be due on day 70 (its own rule), besides its day.
_PROMISE = LoggedOutreach(
    Kind.TRACKING_UPDATE,
    "stage",
    OutreachState.SENT,
    day(69.5),
    day(30),
    sent_at=day(69.5),
    next_update_at=day(70),
)
_CONFIRMED = LoggedOutreach(
    Kind.EXTEND_PROTECTION,
    "stage",
    OutreachState.SENT,
    day(68),
    day(68),
    sent_at=day(68),
    protection_until=day(105),
)
MAKE_DUE: dict[Kind, tuple[dict[str, object], list[LoggedOutreach]]] = {
    Kind.TRACKING_UPDATE: (
        {
            "stages": {"tracking_update": 70, "reassurance": 75, "refund_offer": 80},
            "tracking": {"not_found_refund_days": 85},
        },
        [],
    ),
    Kind.REASSURANCE: (
        {
            "stages": {"reassurance": 70, "refund_offer": 80},
            "tracking": {"not_found_refund_days": 85},
        },
        [logged(Kind.TRACKING_UPDATE, 30)],
    ),
    Kind.REFUND_OFFER: ({"stages": {"refund_offer": 70}}, [logged(Kind.REASSURANCE, 45)]),
    Kind.EXTENSION: ({}, [logged(Kind.REASSURANCE, 45), _CONFIRMED]),
    Kind.REFUND_FOLLOWUP: ({}, [logged(Kind.REFUND_OFFER, 62)]),
    Kind.PROMISED_UPDATE: ({}, [_PROMISE]),
}
# The table in the policy's docstring, as data: "send", "hold" or "-" (not produced).
TABLE: dict[Kind, dict[Situation, str]] = {
    Kind.TRACKING_UPDATE: {Situation.ON_ITS_WAY: "send", Situation.RETURNING: "-"},
    Kind.REASSURANCE: {Situation.ON_ITS_WAY: "send", Situation.RETURNING: "-"},
    Kind.EXTENSION: {s: "send" for s in Situation} | {Situation.RETURNING: "hold"},
    Kind.REFUND_OFFER: {
        Situation.ON_ITS_WAY: "send",
        Situation.AWAITING_CUSTOMS_PAYMENT: "-",  # S3: its clock pauses while the buyer must pay
        Situation.NEVER_FOUND: "send",
        Situation.RETURNING: "send",
    },
    Kind.REFUND_FOLLOWUP: {
        Situation.ON_ITS_WAY: "send",
        Situation.NEVER_FOUND: "send",
        Situation.RETURNING: "send",
    },
    Kind.PROMISED_UPDATE: {s: "send" for s in Situation},
}


def _told(
    parcels: list[ShipmentFacts], the_window: Window, kind: Kind | None = None
) -> list[LoggedOutreach]:
    """What the situation's own events brought on day 69 (pickup, payment, not-found notice),
    as sent: only `kind` is then due on day 70. A refund offer queued with a not-found notice
    (R1) was rejected (the buyer chose to wait), unless the offer is what is tested."""
    told = []
    for i in decide(order("BR"), parcels, the_window, [], day(69.1)).intents:
        if i.kind is Kind.PICKUP_REMINDER or (
            i.trigger == "stage" and i.kind is not Kind.REFUND_OFFER
        ):
            continue
        r1 = situation_of_parcels(parcels) in (Situation.NEVER_FOUND, Situation.RETURNING)
        if i.kind is Kind.REFUND_OFFER and (
            not r1 or kind in (Kind.REFUND_OFFER, Kind.REFUND_FOLLOWUP)
        ):
            continue
        state = OutreachState.REJECTED if i.kind is Kind.REFUND_OFFER else OutreachState.SENT
        told.append(LoggedOutreach(i.kind, i.trigger, state, day(69.1), i.due_at, day(69.1)))
    return told


def situation_of_parcels(parcels: list[ShipmentFacts]) -> Situation:
    return next(k for k, v in SITUATION_PARCELS.items() if v is parcels)


def _decide_in(kind: Kind, situation: Situation) -> Decision:
    """Day 70's decision for an order in `situation` whose log makes `kind` due then."""
    changes, log = MAKE_DUE[kind]
    the_window = window("BR", **changes)  # type: ignore[arg-type]
    parcels = SITUATION_PARCELS[situation]
    return decide(
        order("BR"), parcels, the_window, [*log, *_told(parcels, the_window, kind)], day(70)
    )


def _expected(kind: Kind, situation: Situation) -> str:
    if situation is Situation.DELIVERED:
        return "-"  # P1: delivery stops every one of them
    return TABLE[kind].get(situation, "hold")


def _outcome(decision: Decision, kind: Kind) -> str:
    mine = [i for i in decision.intents if i.kind is kind]
    if not mine:
        return "-"
    (intent,) = mine
    assert not intent.skipped, intent.skip_reason
    return "hold" if intent.held else "send"


@pytest.mark.parametrize("situation", list(Situation))
@pytest.mark.parametrize("kind", list(MAKE_DUE))
def test_each_kind_in_each_situation_is_sent_held_or_stopped_as_the_table_says(
    kind: Kind, situation: Situation
) -> None:
    decision = _decide_in(kind, situation)
    assert _outcome(decision, kind) == _expected(kind, situation)
    for intent in decision.intents:
        if not intent.skipped and not intent.held and intent.kind in FITS:
            assert intent.situation in FITS[intent.kind]
        assert intent.situation is situation


def test_the_table_in_the_test_is_the_policys_fits() -> None:
    for kind, row in TABLE.items():
        for situation in Situation:
            if situation is Situation.DELIVERED:
                continue
            sent = _expected(kind, situation) == "send"
            fits = situation in FITS[kind]
            # "-" for returning stages is P1 (no shipment on its way), not the table.
            assert sent == fits or row.get(situation) == "-", (kind, situation)


def test_held_reassurance_at_the_pickup_point_goes_once_the_parcel_moves_on() -> None:
    parcel = shipment(
        *moving(2, 10, 20, 30, 40),
        ev(43, Status.AVAILABLE_FOR_PICKUP, "Aguardando retirada", "AGÊNCIA CENTRAL"),
        ev(52, Status.IN_TRANSIT, "Objeto devolvido à unidade de distribuição"),
        *moving(58),
    )
    log = simulate(order("BR"), [parcel], BR, every_day(0, 59))
    assert log.held_on(45) == [Kind.REASSURANCE]
    assert Kind.REASSURANCE not in log.sent_on(45)
    assert Kind.REASSURANCE in log.sent_on(52)
    (released,) = [i for i in log.by_day[52] if i.kind is Kind.REASSURANCE]
    assert released.was_held and released.situation is Situation.ON_ITS_WAY


def test_no_refund_offer_is_queued_while_the_parcel_waits_at_the_pickup_point() -> None:
    parcel = SITUATION_PARCELS[Situation.AT_PICKUP_POINT]
    log = [logged(Kind.TRACKING_UPDATE, 30), logged(Kind.REASSURANCE, 45)]
    decision = decide(order("BR"), parcel, BR, log, day(70))
    (offer,) = [i for i in decision.intents if i.kind is Kind.REFUND_OFFER]
    assert offer.held and "pickup point" in offer.note


def test_a_pending_tracking_update_goes_back_to_held_when_the_buyer_must_pay_customs() -> None:
    waiting = LoggedOutreach(
        Kind.TRACKING_UPDATE,
        "stage",
        OutreachState.PLANNED,
        day(30),
        day(30),
        situation=Situation.ON_ITS_WAY,
        send_after=day(31),
    )
    parcels = [shipment(*moving(2, 10, 20), ev(30.5, Status.CUSTOMS_PAYMENT_DUE))]
    decision = decide(order("BR"), parcels, BR, [waiting], day(30.6))
    (withdrawal,) = decision.withdrawals
    assert withdrawal.hold and withdrawal.kind is Kind.TRACKING_UPDATE
    assert "customs" in withdrawal.reason


# --- X1: the extension only once it was done --------------------------------------------------


def test_the_buyer_hears_of_the_extension_only_after_staff_confirmed_it() -> None:
    parcel = shipment(*moving(3, 12, 24, 36, 48, 58))
    action = LoggedOutreach(
        Kind.EXTEND_PROTECTION,
        "stage",
        OutreachState.MANUAL_PENDING,
        day(60),
        day(60),
        protection_until=day(105),
    )
    early = [logged(Kind.TRACKING_UPDATE, 20), logged(Kind.REASSURANCE, 45), action]
    assert decide(order("RU"), [parcel], RU, early, day(64)).intents == ()
    done = [*early[:2], LoggedOutreach(**{**_fields(action), "state": OutreachState.SENT,
                                          "sent_at": day(63)})]  # fmt: skip
    (message,) = decide(order("RU"), [parcel], RU, done, day(64)).intents
    assert message.kind is Kind.EXTENSION and message.protection_until == day(105)
    assert message.due_at == day(63)


def test_an_order_without_marketplace_protection_gets_no_extension_at_all() -> None:
    parcel = shipment(*moving(3, 12, 24, 36, 48, 58, 68, 78))
    shopify = order("RU", has_protection=False)
    log = simulate(shopify, [parcel], RU, every_day(0, 74))
    kinds = [i for intents in log.by_day.values() for i in intents]
    (action,) = [i for i in kinds if i.kind is Kind.EXTEND_PROTECTION]
    assert action.skipped and "no buyer protection" in action.skip_reason
    assert not [i for i in kinds if i.kind is Kind.EXTENSION]


# --- K1, D1: promised dates ------------------------------------------------------------------


def test_a_tracking_update_promises_the_reassurance_day_and_the_reassurance_keeps_it() -> None:
    log = simulate(order("BR"), [shipment(*moving(2, 10, 20, 30, 40, 44))], BR, every_day(0, 46))
    (update,) = log.by_day[30]
    assert update.next_update_at == day(45)
    assert log.sent_on(45) == [Kind.REASSURANCE]


def test_a_promise_whose_stage_is_held_is_kept_by_a_promised_update_for_the_situation() -> None:
    parcel = shipment(*moving(2, 10, 20, 30, 40), ev(44, Status.AVAILABLE_FOR_PICKUP, "", "CTE"))
    log = simulate(order("BR"), [parcel], BR, every_day(0, 46))
    assert log.by_day[30][0].next_update_at == day(45)
    # Pickup on day 44 was told then (an event message keeps the promise by writing sooner).
    assert log.sent_on(44) == [Kind.READY_FOR_PICKUP]
    assert Kind.PROMISED_UPDATE not in log.sent_on(45)


def test_a_promise_nothing_kept_gets_its_promised_update_on_the_day() -> None:
    parcel = SITUATION_PARCELS[Situation.AWAITING_CUSTOMS_PAYMENT]
    told = _told(parcel, BR)
    assert [e.kind for e in told] == [Kind.CUSTOMS_PAYMENT_DUE]
    decision = decide(order("BR"), parcel, BR, [*told, _PROMISE], day(70))
    (update,) = [i for i in decision.intents if not i.held and not i.skipped]
    assert update.kind is Kind.PROMISED_UPDATE and update.trigger == "promise@2026-05-11"
    assert update.situation is Situation.AWAITING_CUSTOMS_PAYMENT
    assert (
        update.next_update_at is not None and update.next_update_at >= day(70) + MIN_PROMISE_AHEAD
    )


def test_every_promised_date_is_at_least_two_days_ahead_and_a_message_comes_by_then() -> None:
    parcels = [shipment(*moving(2, 10, 20, 30, 33), ev(43, Status.AVAILABLE_FOR_PICKUP, "", "X"))]
    log = simulate(order("BR"), parcels, BR, [d / 2 for d in range(0, 200)])
    sent = sorted(
        (at, i) for at, intents in log.by_day.items() for i in intents
        if not i.skipped and not i.held and i.audience.value == "buyer"
        and not i.needs_approval
    )  # fmt: skip
    for at, intent in sent:
        if intent.next_update_at is None:
            continue
        assert intent.next_update_at >= day(at) + MIN_PROMISE_AHEAD
        later = [d for d, _ in sent if day(d) > day(at)]
        if intent.next_update_at <= day(99):
            assert later and day(min(later)) <= intent.next_update_at, (at, intent.kind)


def test_returned_to_sender_promises_a_person_within_two_days_and_queues_their_offer() -> None:
    parcel = SITUATION_PARCELS[Situation.RETURNING]
    decision = decide(order("BR"), parcel, BR, [logged(Kind.TRACKING_UPDATE, 30)], day(69.5))
    kinds = {i.kind: i for i in decision.intents}
    assert kinds[Kind.RETURNED_TO_SENDER].next_update_at == day(69.5) + STAFF_REPLY
    assert kinds[Kind.REFUND_OFFER].needs_approval


# --- B1, B2: a calm inbox --------------------------------------------------------------------


def test_two_messages_due_at_once_go_a_day_apart_the_one_asking_the_buyer_to_act_first() -> None:
    parcels = [
        shipment(*moving(2, 10, 20), ev(29.5, Status.CUSTOMS_HOLD, "Fiscalização")),
        shipment(*moving(2, 10, 20), ev(29.9, Status.AVAILABLE_FOR_PICKUP, "", "X"),
                 number=OTHER_NUMBER),
    ]  # fmt: skip
    decision = decide(order("BR"), parcels, BR, [], day(30))
    by_kind = {i.kind: i for i in decision.intents}
    assert by_kind[Kind.READY_FOR_PICKUP].send_after is None  # goes now
    waiting = by_kind[Kind.CUSTOMS_HOLD]
    assert waiting.send_after == day(30) + SPACING
    assert "one message to a buyer at a time" in waiting.note


def test_the_budget_defers_a_third_message_in_a_week_and_says_until_when() -> None:
    recent = [logged(Kind.TRACKING_UPDATE, 25), logged(Kind.CUSTOMS_HOLD, 28, trigger="x")]
    parcel = [shipment(*moving(2, 10, 20, 31))]
    quick = window("BR", stages={"reassurance": 31})
    decision = decide(order("BR"), parcel, quick, recent, day(31))
    (reassurance,) = decision.intents
    assert reassurance.send_after == day(32)  # the day-25 message leaves the 7-day span
    assert "budget" in reassurance.note and "2026-04-03" in reassurance.note


def test_messages_that_ask_the_buyer_to_act_are_never_held_back_by_the_budget() -> None:
    recent = [logged(Kind.TRACKING_UPDATE, 25), logged(Kind.CUSTOMS_HOLD, 28, trigger="x")]
    parcel = [shipment(*moving(2, 10, 20), ev(30.5, Status.CUSTOMS_PAYMENT_DUE, "Pague"))]
    (due,) = decide(order("BR"), parcel, BR, recent, day(31)).intents
    assert due.kind is Kind.CUSTOMS_PAYMENT_DUE and due.send_after is None


# --- M1: a backlog's old news ----------------------------------------------------------------


def test_a_backlog_import_logs_old_deliveries_and_customs_holds_as_missed() -> None:
    seen = day(80)
    backlog = order("BR", first_seen_at=seen)
    delivered = [shipment(*moving(2, 10), ev(40, Status.DELIVERED, "Entregue"))]
    (note,) = decide(backlog, delivered, BR, [], seen).intents
    assert note.kind is Kind.DELIVERED and note.skipped and "missed" in note.skip_reason
    held = [shipment(*moving(2, 10), ev(50, Status.CUSTOMS_HOLD, "Fiscalização"))]
    kinds = {i.kind: i for i in decide(backlog, held, BR, [], seen).intents}
    assert kinds[Kind.CUSTOMS_HOLD].skipped


def test_a_backlog_parcel_still_waiting_at_the_pickup_point_is_told() -> None:
    waiting = [shipment(*moving(2, 10), ev(50, Status.AVAILABLE_FOR_PICKUP, "", "AGÊNCIA"))]
    decision = decide(order("BR", first_seen_at=day(80)), waiting, BR, [], day(80))
    produced = [i.kind for i in decision.intents if not i.skipped and not i.held]
    assert Kind.READY_FOR_PICKUP in produced


def test_a_delivery_seen_within_the_grace_is_still_confirmed() -> None:
    delivered = [shipment(*moving(2, 10), ev(79, Status.DELIVERED, "Entregue"))]
    (note,) = decide(order("BR", first_seen_at=day(80)), delivered, BR, [], day(80)).intents
    assert note.kind is Kind.DELIVERED and not note.skipped


# --- S8: a follow-up depends on a send of known fate ------------------------------------------


def test_the_refund_follow_up_is_held_while_the_offers_send_is_of_unknown_outcome() -> None:
    parcel = [shipment(*moving(2, 10, 20, 30, 40, 50, 60, 68))]
    unknown = LoggedOutreach(
        Kind.REFUND_OFFER, "stage", OutreachState.NEEDS_REVIEW, day(60), day(60)
    )
    (followup,) = decide(order("BR"), parcel, BR, [unknown], day(68)).intents
    assert followup.kind is Kind.REFUND_FOLLOWUP and followup.held
    assert "needs review" in followup.note
    settled = LoggedOutreach(
        Kind.REFUND_OFFER, "stage", OutreachState.SENT, day(60), day(60), sent_at=day(62)
    )
    held_row = LoggedOutreach(Kind.REFUND_FOLLOWUP, "stage", OutreachState.HELD, day(67), day(67))
    assert decide(order("BR"), parcel, BR, [settled, held_row], day(68)).intents == ()
    (released,) = decide(order("BR"), parcel, BR, [settled, held_row], day(69)).intents
    assert released.was_held and not released.held and released.due_at == day(69)


def _fields(entry: LoggedOutreach) -> dict[str, object]:
    return {name: getattr(entry, name) for name in entry.__slots__}


# --- What the buyer reads for each decision, in every language --------------------------------

LOCALES = ("en", "pt-BR", "es", "ru", "uk", "de", "fr", "it", "pl", "he", "ar")
# What the carrier last said in each situation, as the message quotes it.
LAST_SCAN = {
    Situation.ON_ITS_WAY: "Objeto encaminhado",
    Situation.AWAITING_CUSTOMS_PAYMENT: "Aguardando pagamento",
    Situation.DELIVERY_FAILED: "Endereço incorreto",
    Situation.AT_PICKUP_POINT: "Aguardando retirada",
    Situation.NEVER_FOUND: "",
    Situation.RETURNING: "Devolvido ao remetente",
}


def _read(intent: Intent, locale: str, has_protection: bool = True) -> str:
    """The message a buyer would read for this intent (what send renders from the row)."""
    context = MessageContext(
        buyer_name="Ana Luísa",
        order_id="8152334455667788",
        store_name="Loja Exemplo",
        tracking_numbers=(NUMBER,),
        country="BR",
        situation=intent.situation.value,
        last_event_description=LAST_SCAN.get(intent.situation, ""),
        shipped_at=SHIPPED.date(),
        next_update_on=intent.next_update_at.date() if intent.next_update_at else None,
        protection_until=intent.protection_until.date() if intent.protection_until else None,
        expected_by=intent.expected_by.date() if intent.expected_by else None,
        remedies=Remedies(full_refund=Decimal("129.90"), currency="BRL", reship=True)
        if intent.kind is Kind.REFUND_OFFER
        else None,
        pickup_location="AGÊNCIA CENTRAL"
        if intent.situation is Situation.AT_PICKUP_POINT
        else None,
        has_protection=has_protection,
        timezone="America/Sao_Paulo",
    )
    rendered = render(intent.kind.value, context, locale)
    return f"{rendered.subject}\n{rendered.text}"


@pytest.mark.parametrize("situation", [s for s in Situation if s is not Situation.DELIVERED])
@pytest.mark.parametrize("kind", list(MAKE_DUE))
def test_what_a_decision_sends_says_nothing_the_situation_makes_untrue(
    kind: Kind, situation: Situation
) -> None:
    decision = _decide_in(kind, situation)
    sent = [i for i in decision.intents if not i.skipped and not i.held]
    buyer = [i for i in sent if i.audience is Audience.BUYER]
    for intent in buyer:
        for locale in LOCALES:
            text = _read(intent, locale)
            if situation is not Situation.ON_ITS_WAY:
                assert not found(ON_ITS_WAY, text, locale), (intent.kind, locale, text)
            if intent.kind is not Kind.REFUND_OFFER:
                assert not found(REMEDIES, text, locale), (intent.kind, locale, text)
            if intent.next_update_at is not None:
                assert intent.next_update_at > day(70)  # never a date already past


def test_an_extension_message_is_only_ever_decided_after_its_action_was_confirmed() -> None:
    parcel = shipment(*moving(3, 12, 24, 36, 48, 58, 68, 78))
    # Staff never confirm: no extension message, whatever the day.
    pending = simulate(order("RU"), [parcel], RU, every_day(0, 95), Log(confirm_actions=False))
    assert Kind.EXTEND_PROTECTION in pending.sent_on(60)
    assert not [
        i for intents in pending.by_day.values() for i in intents if i.kind is Kind.EXTENSION
    ]


def test_an_offer_decided_with_a_notice_and_sent_after_it_keeps_the_notices_promise() -> None:
    # The not-found notice and its refund offer are logged in one decision; the notice goes at
    # once, the offer an hour later once staff composed and approved it: the buyer heard from a
    # person, so no promised update on the notice's date.
    notice = LoggedOutreach(
        Kind.TRACKING_NOT_FOUND,
        "order",
        OutreachState.SENT,
        day(5),
        day(5),
        sent_at=day(5),
        next_update_at=day(20),
    )
    offer = LoggedOutreach(
        Kind.REFUND_OFFER, "stage", OutreachState.SENT, day(5), day(5), sent_at=day(5.04)
    )
    staff = LoggedOutreach(
        Kind.STAFF_TRACKING_NOT_FOUND, NUMBER, OutreachState.SENT, day(5), day(5)
    )
    parcel = [shipment(status=Status.NOT_FOUND)]
    decision = decide(order("BR"), parcel, BR, [notice, offer, staff], day(20))
    assert Kind.PROMISED_UPDATE not in [i.kind for i in decision.intents]
    unsent = [notice, LoggedOutreach(Kind.REFUND_OFFER, "stage", OutreachState.AWAITING_APPROVAL,
                                     day(5), day(5)), staff]  # fmt: skip
    decision = decide(order("BR"), parcel, BR, unsent, day(20))
    assert Kind.PROMISED_UPDATE in [i.kind for i in decision.intents]  # nobody wrote: we do
