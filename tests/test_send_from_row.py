"""The send job renders what the log row says, over real SMTP on loopback: the dates decide wrote
(in the buyer's own days), the remedies staff chose, and nothing with a date already past."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import Session

from daemon.config import load_config
from daemon.models import Order, OutreachState
from daemon.review import approve
from daemon.sandbox import SmtpSink
from daemon.send import SendReport
from daemon.wiring import build_runtime
from messages.remedies import Remedies
from tests.test_send_job import NOON_UTC, World

# NOON_UTC is 12:00 on 10 November in Sao Paulo (UTC-3), BR-1's zone (the Brazil window's).


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    sink = SmtpSink().start()
    world = None
    try:
        world = World(tmp_path, sink)
        yield world
    finally:
        sink.stop()
        if world is not None:
            world.engine.dispose()


def _text(mail: EmailMessage) -> str:
    return mail.get_body(("plain",)).get_content()  # type: ignore[union-attr,no-any-return]


def _send(world: World) -> SendReport:
    report = world.send()
    assert isinstance(report, SendReport)
    return report


def test_the_next_update_date_is_the_rows_in_the_buyers_own_day(world: World) -> None:
    # 23:30 UTC on 2 December is 20:30 on 2 December in Sao Paulo: that is the day the buyer reads.
    row_id = world.plan(
        "BR-1",
        "reassurance",
        next_update_at=datetime(2026, 12, 2, 23, 30, tzinfo=UTC),
        expected_by=datetime(2026, 12, 20, 2, 30, tzinfo=UTC),
        situation="on_its_way",
    )
    _send(world)
    [mail] = world.sink.messages
    text = _text(mail)
    assert "2 de dezembro de 2026" in text and "3 de dezembro" not in text
    assert "19 de dezembro de 2026" in text  # expected by, also the row's, also the buyer's day
    row = world.row(row_id)
    assert row.state == OutreachState.SENT and "2 de dezembro de 2026" in row.body_text


def test_a_promise_falling_in_the_buyers_night_names_the_morning_it_goes(world: World) -> None:
    # 02:30 UTC on 3 December is 23:30 on the 2nd in Sao Paulo, in the quiet hours (21:00-08:00):
    # the promised update leaves at 08:00 on the 3rd, so the 3rd is the day to promise.
    world.plan("BR-1", "reassurance", next_update_at=datetime(2026, 12, 3, 2, 30, tzinfo=UTC))
    _send(world)
    text = _text(world.sink.messages[0])
    assert "3 de dezembro de 2026" in text and "2 de dezembro" not in text


def test_an_arbitrary_date_on_the_row_is_the_one_sent(world: World) -> None:
    # Not a stage day of any window: only the row can have said it.
    world.plan("US-1", "tracking_update", next_update_at=datetime(2027, 2, 17, 18, tzinfo=UTC))
    _send(world)
    assert "February 17, 2027" in _text(world.sink.messages[0])


@pytest.mark.parametrize(
    ("promised", "day"),
    [
        (datetime(2026, 11, 9, 12, 0, tzinfo=UTC), "2026-11-09"),  # yesterday
        (datetime(2026, 11, 10, 20, 0, tzinfo=UTC), "2026-11-10"),  # later today
        # 23:30 UTC on the 10th is 20:30 on the 10th in Sao Paulo: today for the buyer
        (datetime(2026, 11, 10, 23, 30, tzinfo=UTC), "2026-11-10"),
    ],
)
def test_a_promised_date_not_ahead_for_the_buyer_is_never_sent(
    world: World, promised: datetime, day: str
) -> None:
    row_id = world.plan("BR-1", "reassurance", next_update_at=promised)
    report = _send(world)
    row = world.row(row_id)
    assert world.sink.messages == []
    assert row.state == OutreachState.FAILED
    assert row.last_error == f"held for staff: the date it promises ({day}) has passed"
    assert report.date_passed == 1 and report.sent == 0


def test_tomorrow_for_the_buyer_is_sent(world: World) -> None:
    world.plan("BR-1", "reassurance", next_update_at=datetime(2026, 11, 11, 3, 0, tzinfo=UTC))
    report = _send(world)
    assert report.sent == 1 and "11 de novembro de 2026" in _text(world.sink.messages[0])


def test_a_reassurance_without_a_date_on_the_row_is_held_not_invented(world: World) -> None:
    row_id = world.plan("BR-1", "reassurance")
    _send(world)
    row = world.row(row_id)
    assert world.sink.messages == [] and row.state == OutreachState.FAILED
    assert "held for staff" in row.last_error and "next_update_on" in row.last_error


def test_the_extension_names_the_protection_end_on_the_row(world: World) -> None:
    with Session(world.engine) as s:  # an AliExpress order: its protection can be extended
        s.execute(update(Order).where(Order.order_id == "US-1").values(source="aliexpress"))  # type: ignore[arg-type]
        s.commit()
    world.plan("US-1", "extension", protection_until=datetime(2026, 12, 24, 12, tzinfo=UTC),
               next_update_at=datetime(2026, 12, 1, 15, tzinfo=UTC))  # fmt: skip
    _send(world)
    mail = world.sink.messages[0]
    assert "December 24, 2026" in mail["Subject"] and "December 24, 2026" in _text(mail)


def test_the_staff_task_to_extend_protection_uses_the_rows_date(world: World) -> None:
    task = world.plan("BR-1", "extend_protection", audience="marketplace", channel="manual",
                      protection_until=datetime(2026, 12, 24, 12, tzinfo=UTC))  # fmt: skip
    without = world.plan("US-1", "extend_protection", audience="marketplace", channel="manual")
    _send(world)
    row = world.row(task)
    assert row.state == OutreachState.MANUAL_PENDING and "runs until 2026-12-24" in row.body_text
    held = world.row(without)
    assert held.state == OutreachState.FAILED and "no protection_until" in held.last_error
    assert world.sink.messages == []


OFFER_TEMPLATE = """{% block subject %}Order {{ order_id }}: what we offer{% endblock %}
{% block body %}
Hi {{ buyer_name }},

We offer: {{ remedies.summary() }}.
{% if remedies.full_refund %}
- a full refund of {{ remedies.full_refund|money(remedies.currency) }}
{% endif %}
{% if remedies.reship %}
- a new parcel
{% endif %}
situation: {{ situation }}; protection: {{ "yes" if has_protection else "no" }}

{% include "_signature.j2" %}
{% endblock %}
"""


def offer_templates(root: Path) -> Path:
    """A seller's template folder with an English refund offer that renders the remedies."""
    (root / "en").mkdir(parents=True)
    (root / "en" / "refund_offer.j2").write_text(OFFER_TEMPLATE)
    return root


def test_a_refund_offer_says_what_staff_composed(world: World, tmp_path: Path) -> None:
    folder = offer_templates(tmp_path / "tpl")
    row_id = world.plan("US-1", "refund_offer", OutreachState.AWAITING_APPROVAL,
                        needs_approval=True, situation="returning")  # fmt: skip
    chosen = Remedies(full_refund=Decimal("25.00"), reship=True, currency="USD")
    approve(world.engine, [row_id], "lead", NOON_UTC, remedies=chosen)
    world.send(world.sender(template_dir=folder))
    text = _text(world.sink.messages[0])
    assert "We offer: full refund 25.00 USD, reship." in text
    assert "a full refund of $25.00" in text and "a new parcel" in text
    assert "situation: returning; protection: no" in text  # US-1 is a manual order


def test_protection_is_spoken_of_only_for_protection_sources(world: World, tmp_path: Path) -> None:
    folder = offer_templates(tmp_path / "tpl")
    with Session(world.engine) as s:
        s.execute(update(Order).where(Order.order_id == "US-1").values(source="aliexpress"))  # type: ignore[arg-type]
        s.commit()
    row_id = world.plan("US-1", "refund_offer", OutreachState.AWAITING_APPROVAL)
    approve(world.engine, [row_id], "lead", NOON_UTC, remedies=Remedies(reship=True),
            protection_sources=("aliexpress",))  # fmt: skip
    world.send(world.sender(template_dir=folder))
    text = _text(world.sink.messages[0])
    assert "situation: on_its_way; protection: yes" in text  # no situation on the row: on its way


def test_an_approved_offer_without_remedies_is_held(world: World) -> None:
    # Approved before offers were composed (or written by hand): it would offer what nobody chose.
    row_id = world.plan("US-1", "refund_offer", OutreachState.APPROVED)
    _send(world)
    row = world.row(row_id)
    assert world.sink.messages == [] and row.state == OutreachState.FAILED
    assert f"refund offer {row_id} has no remedies chosen by staff" in row.last_error


def test_the_runtime_uses_the_sellers_template_folder_for_offers(
    world: World, tmp_path: Path
) -> None:
    folder = offer_templates(tmp_path / "tpl")
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        config_path.read_text().replace('template_dir = ""', f'template_dir = "{folder}"')
    )
    config = load_config(config_path)
    sender = build_runtime(config, world.engine, world.clock, owner="t").sender
    row_id = world.plan("US-1", "refund_offer", OutreachState.AWAITING_APPROVAL)
    approve(world.engine, [row_id], "lead", NOON_UTC, remedies=Remedies(reship=True))
    asyncio.run(sender.run_once())
    assert "We offer: reship." in _text(world.sink.messages[0])
