"""The policy rules, case by case, against the shipped windows in `config.toml`.

Each test reads like a line of the spec in `daemon/policy.py`: an order, its tracking, the days on
which the daemon decides, and what it must (and must not) produce.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from carriers.status import Status
from daemon.models import OrderState, OutreachState
from daemon.policy import (
    STALE_GRACE,
    STALE_RETRY,
    Intent,
    OrderFacts,
    ShipmentFacts,
    customs_pause,
    decide,
    next_decision_at,
)
from messages.kinds import Audience, Kind
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
NZ = window("NZ")

# A parcel to Brazil that keeps moving every 10 days until day 50 and is never delivered.
BR_IN_TRANSIT = shipment(
    *moving(2, 10, 20, 30, 40),
    ev(50, Status.CUSTOMS_HOLD, "Encaminhado para fiscalização aduaneira", "CURITIBA"),
)
# A parcel to Brazil with an ordinary event every 10 days, never stalled, never delivered.
BR_STEADY = shipment(*moving(2, 10, 20, 30, 40, 50, 58, 68, 78, 88, 98))


def produced(intents: tuple[Intent, ...] | list[Intent]) -> list[Kind]:
    return [i.kind for i in intents if not i.skipped]


# --- Stage messages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_day", "expected"),
    [
        (29, []),
        (30, [Kind.TRACKING_UPDATE]),
        (44, []),
        (45, [Kind.REASSURANCE]),
        (50, [Kind.CUSTOMS_HOLD]),
        (59, []),
        (60, [Kind.REFUND_OFFER]),
        (61, []),
        (83, []),  # the extension waits: the refund offer is live
    ],
)
def test_brazil_timeline_day_by_day(on_day: int, expected: list[Kind]) -> None:
    log = simulate(order("BR"), [BR_IN_TRANSIT], BR, every_day(0, 90))
    assert log.sent_on(on_day) == expected


def test_brazil_day_45_reassures_once() -> None:
    log = simulate(order("BR"), [BR_IN_TRANSIT], BR, every_day(0, 90))
    days = [d for d, intents in log.by_day.items() if Kind.REASSURANCE in produced(intents)]
    assert days == [45]


def test_brazil_refund_offer_needs_approval_and_says_why() -> None:
    log = simulate(order("BR"), [BR_IN_TRANSIT], BR, every_day(0, 60))
    (offer,) = log.by_day[60]
    assert offer.kind is Kind.REFUND_OFFER
    assert offer.needs_approval
    assert offer.audience is Audience.BUYER
    assert offer.due_at == day(60)
    assert "day 60 after shipment (BR refund_offer at 60)" in offer.reason
    assert "'Encaminhado para fiscalização aduaneira' in CURITIBA" in offer.reason
    assert "last event 10 days ago" in offer.reason


def test_brazil_reason_names_the_stage_day_and_the_last_event() -> None:
    log = simulate(order("BR"), [BR_IN_TRANSIT], BR, every_day(0, 45))
    (reassurance,) = log.by_day[45]
    assert reassurance.reason.startswith("day 45 after shipment (BR reassurance at 45); ")
    assert reassurance.trigger == "stage"
    assert not reassurance.needs_approval


def test_brazil_delivered_on_day_50_stops_every_delay_message() -> None:
    parcel = shipment(*moving(2, 10, 20, 30, 40), ev(50, Status.DELIVERED, "Objeto entregue"))
    log = simulate(order("BR"), [parcel], BR, every_day(0, 120))
    assert log.sent_on(30) == [Kind.TRACKING_UPDATE]
    assert log.sent_on(45) == [Kind.REASSURANCE]
    assert log.sent_on(50) == [Kind.DELIVERED]
    assert log.sent_on(55) == [Kind.REVIEW_REQUEST]
    later = [k for d, i in log.by_day.items() if d > 50 for k in produced(i)]
    assert later == [Kind.REVIEW_REQUEST]


def test_brazil_customs_payment_from_day_55_to_62_moves_the_refund_offer_7_days_later() -> None:
    parcel = shipment(
        *moving(2, 10, 20, 30, 40, 50),
        ev(55, Status.CUSTOMS_PAYMENT_DUE, "Aguardando pagamento", "CURITIBA"),
        ev(62, Status.IN_TRANSIT, "Pagamento confirmado"),
    )
    log = simulate(order("BR"), [parcel], BR, every_day(0, 90))
    assert log.sent_on(55) == [Kind.CUSTOMS_PAYMENT_DUE]
    assert log.sent_on(60) == []
    assert log.sent_on(66) == []
    assert log.sent_on(67) == [Kind.REFUND_OFFER]
    (offer,) = log.by_day[67]
    assert offer.due_at == day(67)
    assert "refund clock paused 7 days while customs payment was due" in offer.reason


def test_brazil_refund_offer_waits_while_customs_payment_is_still_pending() -> None:
    parcel = shipment(*moving(2, 10, 20, 30, 40, 50), ev(55, Status.CUSTOMS_PAYMENT_DUE))
    log = simulate(order("BR"), [parcel], BR, every_day(0, 120))
    assert all(Kind.REFUND_OFFER not in produced(i) for i in log.by_day.values())


def test_customs_pause_moves_the_refund_offer_and_holds_the_tracking_update_until_paid() -> None:
    # A 20-day payment wait from day 20: the tracking update is held while the buyer must pay
    # (T1), goes once the parcel moves again, and the refund offer moves by the pause (S3).
    parcel = shipment(*moving(2, 10), ev(20, Status.CUSTOMS_PAYMENT_DUE), *moving(40, 50, 60, 70))
    log = simulate(order("BR"), [parcel], BR, every_day(0, 90))
    assert log.held_on(30) == [Kind.TRACKING_UPDATE]
    assert log.sent_on(30) == []
    assert log.sent_on(40) == [Kind.TRACKING_UPDATE]
    assert log.sent_on(45) == [Kind.REASSURANCE]
    assert Kind.REFUND_OFFER in log.sent_on(80)


def test_customs_pause_counts_overlapping_shipments_once() -> None:
    a = shipment(ev(10, Status.CUSTOMS_PAYMENT_DUE), ev(20, Status.IN_TRANSIT))
    b = shipment(ev(15, Status.CUSTOMS_PAYMENT_DUE), ev(25, Status.IN_TRANSIT), number=OTHER_NUMBER)
    assert customs_pause([a, b], day(30)) == timedelta(days=15)
    assert customs_pause([a], day(12)) == timedelta(days=2)


def test_russia_waits_until_75_and_extends_protection_at_60() -> None:
    parcel = shipment(*moving(3, 12, 24, 36, 48, 58, 68, 78))
    log = simulate(order("RU"), [parcel], RU, every_day(0, 95))
    assert log.sent_on(20) == [Kind.TRACKING_UPDATE]
    assert log.sent_on(45) == [Kind.REASSURANCE]
    assert log.sent_on(60) == [Kind.EXTEND_PROTECTION]
    assert log.sent_on(61) == [Kind.EXTENSION]  # once staff confirmed the extension (X1)
    # The offer waits for approval; the extension's promised date is kept meanwhile (K1).
    assert sorted(log.sent_on(75)) == [Kind.PROMISED_UPDATE, Kind.REFUND_OFFER]
    sent_days = sorted(d for d in log.by_day if d <= 75)
    assert sent_days == [20, 45, 60, 61, 75]


def test_russia_extension_is_an_action_then_a_message_with_the_confirmed_date() -> None:
    parcel = shipment(*moving(3, 12, 24, 36, 48, 58))
    log = simulate(order("RU"), [parcel], RU, every_day(0, 61))
    (action,) = log.by_day[60]
    (message,) = log.by_day[61]
    assert action.kind is Kind.EXTEND_PROTECTION and action.audience is Audience.MARKETPLACE
    assert message.kind is Kind.EXTENSION and message.audience is Audience.BUYER
    assert action.trigger == message.trigger == "stage"
    until = SHIPPED + timedelta(days=90 + RU.extension_days)
    assert action.protection_until == message.protection_until == until
    assert until.strftime("%Y-%m-%d") in message.reason


def test_extension_uses_the_orders_own_promised_days() -> None:
    parcel = shipment(*moving(3, 12, 24, 36, 48))
    short = order("RU", promised_days=55)  # the marketplace promised less than the window's 60
    log = simulate(short, [parcel], RU, every_day(0, 56))
    assert log.sent_on(54) == [Kind.EXTEND_PROTECTION]
    (intent,) = log.by_day[54]
    assert intent.protection_until == SHIPPED + timedelta(days=55 + RU.extension_days)
    assert "protection ends on day 55" in intent.reason


def test_a_country_without_a_section_uses_the_default_window() -> None:
    parcel = shipment(*moving(3, 12, 24, 30, 45, 55, 60))
    log = simulate(order("NZ"), [parcel], NZ, every_day(0, 70))
    assert sorted(log.by_day) == [15, 35, 53, 54, 65]
    assert log.sent_on(15) == [Kind.TRACKING_UPDATE]
    assert log.sent_on(35) == [Kind.REASSURANCE]
    assert log.sent_on(53) == [Kind.EXTEND_PROTECTION]
    assert log.sent_on(54) == [Kind.EXTENSION]
    assert Kind.REFUND_OFFER in log.sent_on(65)
    assert "NZ tracking_update at 15" in log.by_day[15][0].reason


def test_a_stage_switched_off_never_fires() -> None:
    quiet = window("BR", stages={"reassurance": None})
    log = simulate(order("BR"), [BR_IN_TRANSIT], quiet, every_day(0, 70))
    assert all(Kind.REASSURANCE not in i for i in map(produced, log.by_day.values()))
    assert log.sent_on(60) == [Kind.REFUND_OFFER]


# --- Catch-up --------------------------------------------------------------------------------


def test_brazil_order_first_seen_on_day_62_gets_only_the_refund_offer() -> None:
    decision = decide(order("BR"), [BR_STEADY], BR, [], day(62))
    assert produced(decision.intents) == [Kind.REFUND_OFFER]
    skipped = {i.kind: i for i in decision.intents if i.skipped}
    assert set(skipped) == {Kind.TRACKING_UPDATE, Kind.REASSURANCE}
    assert "catch-up" in skipped[Kind.REASSURANCE].skip_reason
    assert skipped[Kind.TRACKING_UPDATE].due_at == day(30)


def test_brazil_catch_up_on_day_85_holds_the_extension_behind_the_refund_offer() -> None:
    decision = decide(order("BR"), [BR_STEADY], BR, [], day(85))
    assert produced(decision.intents) == [Kind.REFUND_OFFER]
    kinds = {i.kind for i in decision.intents}
    assert Kind.EXTENSION not in kinds and Kind.EXTEND_PROTECTION not in kinds


def test_russia_catch_up_on_day_80_skips_the_extension_too() -> None:
    parcel = shipment(*moving(3, 12, 24, 36, 48, 58, 68, 78))
    decision = decide(order("RU"), [parcel], RU, [], day(80))
    assert produced(decision.intents) == [Kind.REFUND_OFFER]
    skipped = sorted(i.kind.value for i in decision.intents if i.skipped)
    assert skipped == ["extend_protection", "reassurance", "tracking_update"]


def test_catch_up_after_a_sent_tracking_update_sends_only_the_most_advanced() -> None:
    done = [logged(Kind.TRACKING_UPDATE, 30)]
    decision = decide(order("BR"), [BR_STEADY], BR, done, day(70))
    assert produced(decision.intents) == [Kind.REFUND_OFFER]
    assert [i.kind for i in decision.intents if i.skipped] == [Kind.REASSURANCE]


def test_a_logged_stage_is_never_produced_again_in_any_state_but_held() -> None:
    for state in set(OutreachState) - {OutreachState.HELD}:
        done = [logged(Kind.TRACKING_UPDATE, 30, state)]
        decision = decide(order("BR"), [BR_IN_TRANSIT], BR, done, day(31))
        assert Kind.TRACKING_UPDATE not in {i.kind for i in decision.intents}, state


# --- Stalled ---------------------------------------------------------------------------------


def test_stalled_parcel_brings_the_reassurance_forward_to_when_the_stall_began() -> None:
    parcel = shipment(ev(3, Status.IN_TRANSIT, "Departed", "SHENZHEN"))
    log = simulate(order("BR"), [parcel], BR, every_day(0, 50))
    assert log.sent_on(23) == [Kind.REASSURANCE]
    (intent,) = log.by_day[23]
    assert intent.due_at == day(23)
    assert intent.trigger == "stage"
    assert "stalled: no new event" in intent.reason and "for 20 days" in intent.reason
    assert "brought forward from day 45" in intent.reason
    # The tracking update that falls due later is superseded, and no second reassurance comes.
    assert log.skipped_on(30) == [Kind.TRACKING_UPDATE]
    assert log.sent_on(45) == []


def test_stalled_action_refund_offer_brings_the_offer_forward() -> None:
    eager = window("BR", tracking={"stalled_action": "refund_offer", "stalled_days": 25})
    parcel = shipment(*moving(3, 10, 20))
    log = simulate(order("BR"), [parcel], eager, every_day(0, 60))
    assert log.sent_on(30) == [Kind.TRACKING_UPDATE]
    # The tracking update promised day 45; the offer then awaits approval, so the promised
    # update keeps the date.
    assert sorted(log.sent_on(45)) == [Kind.PROMISED_UPDATE, Kind.REFUND_OFFER]
    offer = next(i for i in log.by_day[45] if i.kind is Kind.REFUND_OFFER)
    assert "threshold crossed" in offer.reason and offer.due_at == day(45)


def test_stall_on_a_parcel_the_carrier_stopped_reporting_says_the_data_may_be_stale() -> None:
    parcel = shipment(ev(3, Status.IN_TRANSIT), status=Status.EXPIRED)
    (intent,) = decide(order("BR"), [parcel], BR, [], day(24)).intents
    assert intent.kind is Kind.REASSURANCE
    assert "stopped reporting" in intent.reason


def test_stalled_action_none_waits_for_the_stage_days() -> None:
    patient = window("BR", tracking={"stalled_action": "none"})
    parcel = shipment(ev(3, Status.IN_TRANSIT))
    log = simulate(order("BR"), [parcel], patient, every_day(0, 50))
    assert sorted(log.by_day) == [30, 45]


def test_parcel_waiting_for_customs_payment_is_not_stalled() -> None:
    parcel = shipment(*moving(2, 10), ev(15, Status.CUSTOMS_PAYMENT_DUE))
    log = simulate(order("BR"), [parcel], BR, every_day(0, 44))
    assert sorted(log.by_day) == [15, 30]


def test_caught_up_stall_reassurance_supersedes_the_tracking_update() -> None:
    parcel = shipment(ev(3, Status.IN_TRANSIT))
    decision = decide(order("BR"), [parcel], BR, [], day(35))
    assert produced(decision.intents) == [Kind.REASSURANCE]
    assert [i.kind for i in decision.intents if i.skipped] == [Kind.TRACKING_UPDATE]


# --- Fresh tracking: stuck or stale (F1-F3) ---------------------------------------------------


def answered(parcel: ShipmentFacts, at_day: float) -> ShipmentFacts:
    return replace(parcel, answered_at=day(at_day))


def test_stage_waits_for_an_answer_newer_than_its_day_and_names_the_number_to_poll() -> None:
    # The reassurance fell due at day 45 00:00; the carrier last answered the evening before.
    stale = answered(BR_STEADY, 44.9)
    now = day(45.2)
    decision = decide(order("BR"), [stale], BR, [logged(Kind.TRACKING_UPDATE, 30)], now)
    assert decision.intents == ()
    assert decision.awaiting_tracking == (NUMBER,)
    waiting = next_decision_at(order("BR"), [stale], BR, [logged(Kind.TRACKING_UPDATE, 30)], now)
    assert waiting == now + STALE_RETRY
    # Once the poll has answered, the same decision goes out.
    fresh = answered(BR_STEADY, 45.1)
    decision = decide(order("BR"), [fresh], BR, [logged(Kind.TRACKING_UPDATE, 30)], now)
    assert produced(decision.intents) == [Kind.REASSURANCE]
    assert decision.awaiting_tracking == ()
    assert "stale" not in decision.intents[0].reason


def test_a_fresh_answer_showing_delivery_stops_the_stage_a_stale_one_would_have_sent() -> None:
    history = [logged(Kind.TRACKING_UPDATE, 30)]
    before = answered(shipment(*moving(2, 10, 20, 30, 40)), 44.5)
    assert decide(order("BR"), [before], BR, history, day(45.1)).intents == ()
    after = answered(shipment(*moving(2, 10, 20, 30, 40), ev(44.8, Status.DELIVERED)), 45.2)
    decision = decide(order("BR"), [after], BR, history, day(45.3))
    assert Kind.REASSURANCE not in produced(decision.intents)
    assert produced(decision.intents) == [Kind.DELIVERED]


def test_stale_tracking_holds_the_whole_catch_up_not_just_part_of_it() -> None:
    stale = answered(BR_STEADY, 29)
    decision = decide(order("BR"), [stale], BR, [], day(45.5))
    assert decision.intents == ()  # neither the tracking update nor the reassurance alone


def test_event_messages_do_not_wait_for_fresh_tracking() -> None:
    held = answered(shipment(*moving(2, 10), ev(30.3, Status.CUSTOMS_HOLD)), 30.5)
    late = answered(shipment(*moving(2, 10), number=OTHER_NUMBER), 29.5)
    decision = decide(order("BR"), [held, late], BR, [], day(30.6))
    assert produced(decision.intents) == [Kind.CUSTOMS_HOLD]
    assert decision.awaiting_tracking == (OTHER_NUMBER,)  # the tracking update waits for it


def test_past_the_grace_a_stage_goes_out_on_stale_data_and_says_so() -> None:
    stale = answered(BR_STEADY, 40)
    now = day(45) + STALE_GRACE
    decision = decide(order("BR"), [stale], BR, [logged(Kind.TRACKING_UPDATE, 30)], now)
    assert produced(decision.intents) == [Kind.REASSURANCE]
    assert decision.awaiting_tracking == ()
    assert f"no answer from the carrier for {NUMBER} since {day(40):%Y-%m-%d}" in (
        decision.intents[0].reason
    )


def test_a_stall_the_carrier_never_confirmed_is_stale_data_not_a_stuck_parcel() -> None:
    # Last event day 3, stall threshold (20 days) crossed day 23; the carrier went silent on day 10.
    silent = answered(shipment(ev(3, Status.IN_TRANSIT)), 10)
    assert decide(order("BR"), [silent], BR, [], day(23.5)).awaiting_tracking == (NUMBER,)
    # A day later nothing has confirmed the stall: no reassurance brought forward.
    assert decide(order("BR"), [silent], BR, [], day(24.5)).intents == ()
    # Confirmed by an answer after the crossing, it is a stall.
    confirmed = answered(shipment(ev(3, Status.IN_TRANSIT)), 24)
    decision = decide(order("BR"), [confirmed], BR, [], day(24.5))
    assert produced(decision.intents) == [Kind.REASSURANCE]
    assert "stalled: no new event" in decision.intents[0].reason


def test_a_delivered_shipment_of_the_order_does_not_need_fresh_answers() -> None:
    delivered = answered(
        shipment(*moving(2, 10), ev(20, Status.DELIVERED), number=OTHER_NUMBER), 20
    )
    moving_on = answered(BR_STEADY, 45.1)
    history = [logged(Kind.TRACKING_UPDATE, 30)]
    decision = decide(order("BR"), [delivered, moving_on], BR, history, day(45.2))
    assert produced(decision.intents) == [Kind.REASSURANCE]


# --- Tracking never found and invalid numbers -------------------------------------------------


def test_tracking_not_found_alerts_staff_and_tells_the_buyer_a_person_writes_by_a_date() -> None:
    parcel = shipment(status=Status.NOT_FOUND)
    log = simulate(order("BR"), [parcel], BR, every_day(0, 40))
    # R1: the notice comes with the refund offer that waits for staff's choice of remedies.
    assert set(log.sent_on(5)) == {
        Kind.TRACKING_NOT_FOUND,
        Kind.STAFF_TRACKING_NOT_FOUND,
        Kind.REFUND_OFFER,
    }
    staff = next(i for i in log.by_day[5] if i.kind is Kind.STAFF_TRACKING_NOT_FOUND)
    assert staff.audience is Audience.STAFF and staff.trigger == NUMBER
    offer = next(i for i in log.by_day[5] if i.kind is Kind.REFUND_OFFER)
    assert offer.needs_approval and "tracking never found" in offer.reason
    assert "write by 2026-03-22" in offer.reason
    # The buyer was told a person writes by the not-found refund day; the offer still awaits
    # approval then, so the promised update keeps that date (K1).
    notice = next(i for i in log.by_day[5] if i.kind is Kind.TRACKING_NOT_FOUND)
    assert notice.next_update_at == day(20)
    assert log.sent_on(20) == [Kind.PROMISED_UPDATE]
    assert sorted(d for d in log.by_day if d <= 20) == [5, 20]


def test_number_never_polled_counts_as_not_found() -> None:
    decision = decide(order("BR"), [shipment()], BR, [], day(6))
    staff = next(i for i in decision.intents if i.kind is Kind.STAFF_TRACKING_NOT_FOUND)
    assert "never polled yet" in staff.reason


def test_not_found_on_late_import_tells_the_buyer_with_the_offer_and_a_date_ahead() -> None:
    decision = decide(order("BR"), [shipment(status=Status.NOT_FOUND)], BR, [], day(25))
    assert sorted(produced(decision.intents)) == [
        Kind.REFUND_OFFER,
        Kind.STAFF_TRACKING_NOT_FOUND,
        Kind.TRACKING_NOT_FOUND,
    ]
    notice = next(i for i in decision.intents if i.kind is Kind.TRACKING_NOT_FOUND)
    assert notice.next_update_at is not None and notice.next_update_at >= day(27)


def test_a_parcel_with_events_is_never_not_found() -> None:
    decision = decide(order("BR"), [shipment(ev(1, Status.INFO_RECEIVED))], BR, [], day(10))
    assert decision.intents == ()


def test_invalid_tracking_number_alerts_staff_at_once() -> None:
    parcel = shipment(number="RR123456789CN", warning="fails the UPU S10 check digit")
    decision = decide(order("BR"), [parcel], BR, [], day(0))
    (alert,) = decision.intents
    assert alert.kind is Kind.STAFF_INVALID_TRACKING
    assert alert.audience is Audience.STAFF
    assert alert.trigger == "RR123456789CN"
    assert "check digit" in alert.reason


def test_invalid_looking_number_the_carrier_tracks_raises_no_alert() -> None:
    parcel = shipment(ev(1, Status.IN_TRANSIT), warning="matches no known format")
    decision = decide(order("BR"), [parcel], BR, [], day(2))
    assert decision.intents == ()


# --- Event messages --------------------------------------------------------------------------


def test_customs_hold_is_one_message_per_episode() -> None:
    parcel = shipment(
        ev(20, Status.CUSTOMS_HOLD, "Fiscalização aduaneira"),
        ev(21, Status.CUSTOMS_HOLD, "Fiscalização aduaneira"),
        ev(24, Status.IN_TRANSIT),
        ev(26, Status.CUSTOMS_HOLD, "Fiscalização aduaneira"),
    )
    log = simulate(order("BR"), [parcel], BR, every_day(0, 29))
    assert log.sent_on(20) == [Kind.CUSTOMS_HOLD]
    assert log.sent_on(21) == []
    assert log.sent_on(26) == [Kind.CUSTOMS_HOLD]
    triggers = [i.trigger for d in (20, 26) for i in log.by_day[d]]
    assert triggers == [f"{NUMBER}@20260322T080000Z", f"{NUMBER}@20260328T080000Z"]
    assert "brazil" in log.by_day[20][0].reason


def test_customs_hold_already_over_when_first_seen_is_logged_as_skipped() -> None:
    parcel = shipment(ev(10, Status.CUSTOMS_HOLD), ev(12, Status.IN_TRANSIT))
    decision = decide(order("BR"), [parcel], BR, [], day(13))
    (intent,) = decision.intents
    assert intent.kind is Kind.CUSTOMS_HOLD and intent.skipped
    assert "already over" in intent.skip_reason


def test_each_shipment_gets_its_own_customs_message() -> None:
    a = shipment(ev(10, Status.CUSTOMS_PAYMENT_DUE))
    b = shipment(ev(10, Status.CUSTOMS_PAYMENT_DUE), number=OTHER_NUMBER)
    decision = decide(order("BR"), [a, b], BR, [], day(11))
    assert {(i.kind, i.tracking_number) for i in decision.intents} == {
        (Kind.CUSTOMS_PAYMENT_DUE, NUMBER),
        (Kind.CUSTOMS_PAYMENT_DUE, OTHER_NUMBER),
    }


def test_returned_to_sender_is_told_once_and_stops_the_stages() -> None:
    parcel = shipment(
        *moving(2, 10), ev(15, Status.RETURNING, "Devolvido ao remetente"), ev(40, Status.RETURNED)
    )
    log = simulate(order("BR"), [parcel], BR, every_day(0, 90))
    # The buyer is told a person writes with the options within two days; the refund offer,
    # waiting for staff's choice, is that task (R1). No stage message follows (P1).
    assert sorted(log.sent_on(15)) == [Kind.REFUND_OFFER, Kind.RETURNED_TO_SENDER]
    told = next(i for i in log.by_day[15] if i.kind is Kind.RETURNED_TO_SENDER)
    assert told.next_update_at == day(17)
    stages = {Kind.TRACKING_UPDATE, Kind.REASSURANCE, Kind.EXTEND_PROTECTION}
    assert not [i for intents in log.by_day.values() for i in intents if i.kind in stages]


def test_delivery_failure_tells_the_buyer() -> None:
    parcel = shipment(*moving(2, 10), ev(25, Status.DELIVERY_FAILURE, "Endereço incorreto"))
    log = simulate(order("BR"), [parcel], BR, every_day(0, 29))
    assert log.sent_on(25) == [Kind.DELIVERY_FAILURE]
    assert "Endereço incorreto" in log.by_day[25][0].reason


def test_ready_for_pickup_then_a_reminder_after_five_days() -> None:
    parcel = shipment(*moving(2, 10), ev(20, Status.AVAILABLE_FOR_PICKUP, "Aguardando retirada"))
    log = simulate(order("BR"), [parcel], BR, every_day(0, 29))
    assert log.sent_on(20) == [Kind.READY_FOR_PICKUP]
    assert log.sent_on(25) == [Kind.PICKUP_REMINDER]
    assert log.by_day[20][0].trigger == log.by_day[25][0].trigger


def test_no_pickup_reminder_once_the_parcel_was_collected() -> None:
    parcel = shipment(*moving(2, 10), ev(20, Status.AVAILABLE_FOR_PICKUP), ev(22, Status.DELIVERED))
    log = simulate(order("BR"), [parcel], BR, every_day(0, 40))
    assert sorted(log.by_day) == [20, 22, 27]
    assert log.sent_on(22) == [Kind.DELIVERED]
    assert log.sent_on(27) == [Kind.REVIEW_REQUEST]


def test_split_order_is_delivered_once_when_every_parcel_is() -> None:
    a = shipment(*moving(2, 10), ev(20, Status.DELIVERED))
    b = shipment(*moving(3, 12, 22), ev(33, Status.DELIVERED), number=OTHER_NUMBER)
    log = simulate(order("BR"), [a, b], BR, every_day(0, 60))
    assert log.sent_on(20) == []
    assert log.sent_on(30) == [Kind.TRACKING_UPDATE]
    assert log.sent_on(33) == [Kind.DELIVERED]
    assert log.sent_on(38) == [Kind.REVIEW_REQUEST]
    assert "all 2 parcels delivered" in log.by_day[33][0].reason


def test_review_request_follows_a_late_delivered_confirmation_not_the_delivery() -> None:
    parcel = shipment(*moving(2), ev(10, Status.DELIVERED))
    log = simulate(order("BR"), [parcel], BR, [40.0, 41.0, 44.0, 45.0])
    assert log.sent_on(40) == [Kind.DELIVERED]
    assert log.sent_on(44) == []
    assert log.sent_on(45) == [Kind.REVIEW_REQUEST]


# --- Stop rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [OrderState.DISPUTED, OrderState.CANCELLED, OrderState.CLOSED])
def test_disputed_cancelled_or_closed_order_gets_nothing(state: OrderState) -> None:
    parcel = shipment(status=Status.NOT_FOUND, warning="matches no known format")
    log = simulate(order("BR", state=state), [parcel], BR, every_day(0, 100))
    assert log.by_day == {}


def test_opted_out_order_gets_staff_alerts_only() -> None:
    parcel = shipment(status=Status.NOT_FOUND, warning="matches no known format")
    log = simulate(order("BR", state=OrderState.OPTED_OUT), [parcel], BR, every_day(0, 100))
    kinds = {i.kind for intents in log.by_day.values() for i in intents}
    assert kinds == {Kind.STAFF_INVALID_TRACKING, Kind.STAFF_TRACKING_NOT_FOUND}


def test_after_a_refund_offer_only_its_follow_up_and_meaningful_events_come() -> None:
    parcel = shipment(
        *moving(2, 10, 20, 30, 40, 50),
        ev(65, Status.CUSTOMS_HOLD),
        ev(68, Status.CUSTOMS_PAYMENT_DUE),
        ev(75, Status.AVAILABLE_FOR_PICKUP),
        ev(90, Status.DELIVERED),
    )
    offer = [logged(Kind.REFUND_OFFER, 60, OutreachState.SENT)]
    log = Log(entries=list(offer))
    simulate(order("BR"), [parcel], BR, every_day(61, 120), log)
    produced_days = {d: log.sent_on(d) for d in sorted(log.by_day) if log.sent_on(d)}
    assert produced_days == {
        67: [Kind.REFUND_FOLLOWUP],
        68: [Kind.CUSTOMS_PAYMENT_DUE],
        75: [Kind.READY_FOR_PICKUP],
        80: [Kind.PICKUP_REMINDER],
        90: [Kind.DELIVERED],
    }


@pytest.mark.parametrize(
    "state", [OutreachState.REJECTED, OutreachState.WITHDRAWN, OutreachState.SKIPPED]
)
def test_rejected_refund_offer_lets_brazils_extension_run_on_day_83(state: OutreachState) -> None:
    offer = [logged(Kind.REFUND_OFFER, 60, state)]
    decision = decide(order("BR"), [BR_STEADY], BR, offer, day(83))
    assert produced(decision.intents) == [Kind.EXTEND_PROTECTION]


def test_refund_offer_awaiting_approval_holds_the_extension() -> None:
    offer = [logged(Kind.REFUND_OFFER, 60, OutreachState.AWAITING_APPROVAL)]
    assert decide(order("BR"), [BR_IN_TRANSIT], BR, offer, day(83)).intents == ()


def test_extension_after_protection_ended_is_skipped() -> None:
    offer = [
        logged(Kind.TRACKING_UPDATE, 30),
        logged(Kind.REASSURANCE, 45),
        logged(Kind.REFUND_OFFER, 60, OutreachState.REJECTED),
    ]
    decision = decide(order("BR"), [BR_STEADY], BR, offer, day(95))
    assert produced(decision.intents) == []
    assert {i.kind for i in decision.intents} == {Kind.EXTEND_PROTECTION}
    assert all("protection already ended" in i.skip_reason for i in decision.intents)


def test_refund_follow_up_seven_days_after_the_offer_went_out() -> None:
    offer = logged(Kind.REFUND_OFFER, 60, OutreachState.SENT)
    assert decide(order("BR"), [BR_IN_TRANSIT], BR, [offer], day(66.9)).intents == ()
    (followup,) = decide(order("BR"), [BR_IN_TRANSIT], BR, [offer], day(67)).intents
    assert followup.kind is Kind.REFUND_FOLLOWUP and followup.trigger == "stage"


def test_no_refund_follow_up_for_an_offer_not_yet_sent_or_a_delivered_parcel() -> None:
    waiting = logged(Kind.REFUND_OFFER, 60, OutreachState.APPROVED)
    delivered = shipment(*moving(2, 10), ev(62, Status.DELIVERED))
    sent = logged(Kind.REFUND_OFFER, 60, OutreachState.SENT)
    assert produced(decide(order("BR"), [BR_IN_TRANSIT], BR, [waiting], day(80)).intents) == []
    assert produced(decide(order("BR"), [delivered], BR, [sent], day(80)).intents) == [
        Kind.DELIVERED
    ]


# --- Withdrawals -----------------------------------------------------------------------------


@pytest.mark.parametrize("state", [OutreachState.AWAITING_APPROVAL, OutreachState.APPROVED])
def test_pending_refund_offer_is_withdrawn_when_the_parcel_moves_again(
    state: OutreachState,
) -> None:
    offer = logged(Kind.REFUND_OFFER, 60, state)
    moved = shipment(*moving(2, 10, 20, 30, 40, 50), ev(61, Status.IN_TRANSIT, "Em trânsito"))
    decision = decide(order("BR"), [moved], BR, [offer], day(62))
    (withdrawal,) = decision.withdrawals
    assert (withdrawal.kind, withdrawal.trigger) == (Kind.REFUND_OFFER, "stage")
    assert "moved again" in withdrawal.reason and "Em trânsito" in withdrawal.reason


def test_pending_refund_offer_is_withdrawn_when_delivered() -> None:
    offer = logged(Kind.REFUND_OFFER, 60, OutreachState.AWAITING_APPROVAL)
    delivered = shipment(*moving(2, 10, 20, 30, 40, 50), ev(61, Status.DELIVERED))
    decision = decide(order("BR"), [delivered], BR, [offer], day(62))
    assert [(w.kind, w.trigger) for w in decision.withdrawals] == [(Kind.REFUND_OFFER, "stage")]
    assert produced(decision.intents) == [Kind.DELIVERED]


def test_sent_refund_offer_is_not_withdrawn() -> None:
    offer = logged(Kind.REFUND_OFFER, 60, OutreachState.SENT)
    moved = shipment(*moving(2, 10, 20, 30, 40, 50, 61))
    assert decide(order("BR"), [moved], BR, [offer], day(62)).withdrawals == ()


def test_unmoved_parcel_keeps_its_pending_offer() -> None:
    offer = logged(Kind.REFUND_OFFER, 60, OutreachState.AWAITING_APPROVAL)
    assert decide(order("BR"), [BR_IN_TRANSIT], BR, [offer], day(70)).withdrawals == ()


def test_withdrawn_offer_lets_the_window_continue_in_the_same_decision() -> None:
    offer = logged(Kind.REFUND_OFFER, 60, OutreachState.AWAITING_APPROVAL)
    moved = shipment(*moving(2, 10, 20, 30, 40, 50, 82))
    decision = decide(order("BR"), [moved], BR, [offer], day(83))
    assert len(decision.withdrawals) == 1
    assert produced(decision.intents) == [Kind.EXTEND_PROTECTION]


def test_pending_buyer_messages_are_withdrawn_when_the_order_is_disputed() -> None:
    pending = [
        logged(Kind.REASSURANCE, 45, OutreachState.PLANNED),
        logged(Kind.STAFF_TRACKING_NOT_FOUND, 5, OutreachState.PLANNED, trigger=NUMBER),
    ]
    disputed = order("BR", state=OrderState.DISPUTED)
    decision = decide(disputed, [BR_IN_TRANSIT], BR, pending, day(46))
    assert [w.kind for w in decision.withdrawals] == [Kind.REASSURANCE]
    assert "disputed" in decision.withdrawals[0].reason


def test_pending_delay_message_is_withdrawn_once_delivered() -> None:
    pending = [logged(Kind.REASSURANCE, 45, OutreachState.PLANNED)]
    delivered = shipment(*moving(2, 10), ev(45.5, Status.DELIVERED))
    decision = decide(order("BR"), [delivered], BR, pending, day(46))
    assert [w.kind for w in decision.withdrawals] == [Kind.REASSURANCE]


# --- When to look again ----------------------------------------------------------------------


def test_next_decision_at_is_the_next_stage_day() -> None:
    done = [logged(Kind.TRACKING_UPDATE, 30)]
    assert next_decision_at(order("BR"), [BR_IN_TRANSIT], BR, done, day(31)) == day(45)


def test_next_decision_at_counts_what_is_due_now_as_logged() -> None:
    assert next_decision_at(order("BR"), [BR_IN_TRANSIT], BR, [], day(30)) == day(45)


def test_next_decision_at_sees_the_stall_coming() -> None:
    parcel = shipment(ev(3, Status.IN_TRANSIT))
    assert next_decision_at(order("BR"), [parcel], BR, [], day(4)) == day(23)


def test_next_decision_at_for_a_number_not_found_is_the_alert_day() -> None:
    parcel = shipment(status=Status.NOT_FOUND)
    assert next_decision_at(order("BR"), [parcel], BR, [], day(1)) == day(5)


def test_next_decision_at_ignores_the_refund_offer_while_customs_payment_is_pending() -> None:
    parcel = shipment(*moving(2, 10, 20, 30, 40, 50), ev(55, Status.CUSTOMS_PAYMENT_DUE))
    done = [
        logged(Kind.TRACKING_UPDATE, 30),
        logged(Kind.REASSURANCE, 45),
        logged(Kind.CUSTOMS_PAYMENT_DUE, 55, trigger=f"{NUMBER}@20260426T080000Z"),
    ]
    # The refund offer (day 60 plus a pause still running) sets no time; the extension does.
    assert next_decision_at(order("BR"), [parcel], BR, done, day(56)) == day(83)


def test_next_decision_at_is_none_for_a_finished_order() -> None:
    parcel = shipment(*moving(2), ev(10, Status.DELIVERED))
    done = [
        logged(Kind.DELIVERED, 10, trigger="order"),
        logged(Kind.REVIEW_REQUEST, 15, trigger="order"),
    ]
    assert next_decision_at(order("BR"), [parcel], BR, done, day(16)) is None
    disputed = order("BR", state=OrderState.DISPUTED)
    assert next_decision_at(disputed, [BR_IN_TRANSIT], BR, [], day(1)) is None


def test_decide_is_pure_and_order_of_events_does_not_matter() -> None:
    events = (*moving(2, 10, 20, 30), ev(33, Status.CUSTOMS_HOLD))
    forward = ShipmentFacts(NUMBER, Status.CUSTOMS_HOLD, events)
    backward = ShipmentFacts(NUMBER, Status.CUSTOMS_HOLD, tuple(reversed(events)))
    the_order = OrderFacts("AE-1001", "BR", SHIPPED)
    first = decide(the_order, [forward], BR, [], day(50))
    assert first == decide(the_order, [backward], BR, [], day(50))
    assert first == decide(the_order, [forward], BR, [], day(50))
