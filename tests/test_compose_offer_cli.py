"""Staff compose refund offers through the CLI (`log compose`, `log approve` with remedy options),
on a real SQLite file: what the buyer will be offered is chosen by a person, recorded with who and
when, and an offer nobody composed cannot be approved."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlmodel import Session, select

from daemon.db import make_engine
from daemon.models import Order, Outreach, OutreachState
from messages.remedies import Remedies
from tests.conftest import Workspace

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

ORDERS = """order_id,source,buyer_name,email,locale,country,ship_date,tracking_numbers,order_value,currency
AE-1,aliexpress,Ana Souza,ana@example.com,pt-BR,BR,2026-10-01,QQ850419295BR,"129,90",BRL
SH-1,shopify,Jo Smith,jo@example.com,en-US,US,2026-10-01,LB528961554HK,25.00,usd
NV-1,manual,Ivan Petrov,ivan@example.ru,ru,RU,2026-10-01,RR123456785CN,,
"""


def seed(ws: Workspace) -> dict[str, int]:
    path = ws.root / "orders.csv"
    path.write_text(ORDERS)
    result = ws.run("orders", "import", str(path))
    assert result.exit_code == 0, result.output
    engine = make_engine(ws.database_url)
    ids: dict[str, int] = {}
    rows = {
        "offer_ae": ("AE-1", "refund_offer", OutreachState.AWAITING_APPROVAL),
        "offer_sh": ("SH-1", "refund_offer", OutreachState.AWAITING_APPROVAL),
        "offer_nv": ("NV-1", "refund_offer", OutreachState.AWAITING_APPROVAL),
        "approved_ae": ("AE-1", "refund_offer", OutreachState.APPROVED),
        "reassure_sh": ("SH-1", "reassurance", OutreachState.PLANNED),
    }
    with Session(engine) as s:
        orders = {o.order_id: o.id for o in s.exec(select(Order)).all()}
        for key, (oid, kind, st) in rows.items():
            order_pk = orders[oid]
            assert order_pk is not None
            row = Outreach(order_pk=order_pk, kind=kind, trigger=key, state=st, channel="email",
                           reason=f"{kind} for {oid}", due_at=T0, created_at=T0, updated_at=T0,
                           needs_approval=kind == "refund_offer")  # fmt: skip
            s.add(row)
            s.commit()
            assert row.id is not None
            ids[key] = row.id
    engine.dispose()
    return ids


def row_of(ws: Workspace, row_id: int) -> Outreach:
    engine = make_engine(ws.database_url)
    with Session(engine) as s:
        row = s.get(Outreach, row_id)
        assert row is not None
    engine.dispose()
    return row


def remedies_of(ws: Workspace, row_id: int) -> Remedies | None:
    return Remedies.from_json(row_of(ws, row_id).remedies)


@pytest.fixture
def seeded(upgraded: Workspace) -> tuple[Workspace, dict[str, int]]:
    return upgraded, seed(upgraded)


def test_full_refund_takes_the_orders_value_and_currency(
    seeded: tuple[Workspace, dict[str, int]],
) -> None:
    ws, ids = seeded
    result = ws.run("log", "compose", str(ids["offer_ae"]), "--full-refund", "--reship",
                    "--by", "maria")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"composed {ids['offer_ae']}: full refund 129.90 BRL, reship" in result.stdout
    row = row_of(ws, ids["offer_ae"])
    assert Remedies.from_json(row.remedies) == Remedies(
        full_refund=Decimal("129.90"), reship=True, currency="BRL"
    )
    assert row.decided_by == "maria" and row.decided_at is not None
    assert row.state == OutreachState.AWAITING_APPROVAL  # composed, not approved yet


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--full-refund-amount", "20,00"], Remedies(full_refund=Decimal("20.00"), currency="USD")),
        (["--partial", "20%"], Remedies(partial_percent=Decimal("20"))),
        (["--partial", "15.00", "--reship"],
         Remedies(partial_refund=Decimal("15.00"), reship=True, currency="USD")),
        (["--reship", "--line", "Sorry for the wait, Jo."],
         Remedies(reship=True, note="Sorry for the wait, Jo.")),
    ],
)  # fmt: skip
def test_each_remedy_option(
    seeded: tuple[Workspace, dict[str, int]], options: list[str], expected: Remedies
) -> None:
    ws, ids = seeded
    result = ws.run("log", "compose", str(ids["offer_sh"]), *options)
    assert result.exit_code == 0, result.output
    assert remedies_of(ws, ids["offer_sh"]) == expected
    assert expected.summary() in result.stdout


def test_wait_only_for_a_source_whose_protection_can_be_extended(
    seeded: tuple[Workspace, dict[str, int]],
) -> None:
    ws, ids = seeded
    refused = ws.run("log", "compose", str(ids["offer_sh"]), "--wait")
    assert refused.exit_code == 1
    assert "--wait: order SH-1 comes from 'shopify'" in refused.stderr
    assert "store.protection_sources: aliexpress" in refused.stderr
    assert row_of(ws, ids["offer_sh"]).remedies == ""
    accepted = ws.run("log", "compose", str(ids["offer_ae"]), "--wait", "--partial", "10%")
    assert accepted.exit_code == 0, accepted.output
    assert remedies_of(ws, ids["offer_ae"]) == Remedies(
        wait_extended=True, partial_percent=Decimal("10")
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--partial", "abc"], "--partial: 'abc' is not a number"),
        (["--partial", "15.001"], "--partial: 15.001 has more than two decimals"),
        (["--partial", "150%"], "--partial: 150 is not between 0 and 100"),
        (["--partial", "0"], "--partial: 0 is not a positive amount"),
        (["--full-refund-amount", "12.345"],
         "--full-refund-amount: 12.345 has more than two decimals"),
        (["--full-refund-amount", "-5"], "--full-refund-amount: -5 is not a positive amount"),
        (["--full-refund-amount", ""], "--full-refund-amount: give an amount"),
        (["--reship", "--line", "see www.cheap.shop"], "--line: no links"),
        (["--line", "only words"], "choose at least one of --full-refund"),
        ([], "choose what to offer"),
    ],
)  # fmt: skip
def test_bad_choices_name_the_option(
    seeded: tuple[Workspace, dict[str, int]], options: list[str], message: str
) -> None:
    ws, ids = seeded
    result = ws.run("log", "compose", str(ids["offer_sh"]), *options)
    assert result.exit_code == 1
    assert message in result.stderr
    assert row_of(ws, ids["offer_sh"]).remedies == ""


def test_full_refund_of_an_order_without_a_value(
    seeded: tuple[Workspace, dict[str, int]],
) -> None:
    ws, ids = seeded
    result = ws.run("log", "compose", str(ids["offer_nv"]), "--full-refund")
    assert result.exit_code == 1
    assert "--full-refund: order NV-1 has no value on record" in result.stderr
    no_currency = ws.run("log", "compose", str(ids["offer_nv"]), "--full-refund-amount", "990")
    assert (
        no_currency.exit_code == 1
        and "--currency: order NV-1 has no currency" in no_currency.stderr
    )
    given = ws.run("log", "compose", str(ids["offer_nv"]), "--full-refund-amount", "990",
                   "--currency", "rub")  # fmt: skip
    assert given.exit_code == 0, given.output
    assert remedies_of(ws, ids["offer_nv"]) == Remedies(full_refund=Decimal("990"), currency="RUB")


def test_only_a_refund_offer_awaiting_approval_is_composed(
    seeded: tuple[Workspace, dict[str, int]],
) -> None:
    ws, ids = seeded
    other = ws.run("log", "compose", str(ids["reassure_sh"]), "--reship")
    assert other.exit_code == 1
    assert f"log entry {ids['reassure_sh']} is a reassurance; only a refund_offer" in other.stderr
    done = ws.run("log", "compose", str(ids["approved_ae"]), "--reship")
    assert done.exit_code == 1
    assert f"log entry {ids['approved_ae']} is approved; only awaiting_approval" in done.stderr
    missing = ws.run("log", "compose", "99999", "--reship")
    assert missing.exit_code == 1 and "no log entry 99999" in missing.stderr


def test_approving_an_offer_nobody_composed_is_refused(
    seeded: tuple[Workspace, dict[str, int]],
) -> None:
    ws, ids = seeded
    result = ws.run("log", "approve", str(ids["offer_sh"]))
    assert result.exit_code == 1
    assert "is a refund offer nobody has composed: choose what to offer" in result.stderr
    assert f"parcelwatch log approve {ids['offer_sh']} --full-refund --reship" in result.stderr
    assert row_of(ws, ids["offer_sh"]).state == OutreachState.AWAITING_APPROVAL
    assert ws.run("log", "compose", str(ids["offer_sh"]), "--reship").exit_code == 0
    approved = ws.run("log", "approve", str(ids["offer_sh"]), "--by", "lead")
    assert approved.exit_code == 0, approved.output
    assert row_of(ws, ids["offer_sh"]).state == OutreachState.APPROVED


def test_approve_with_options_composes_each_offer_from_its_own_order(
    seeded: tuple[Workspace, dict[str, int]],
) -> None:
    ws, ids = seeded
    result = ws.run("log", "approve", str(ids["offer_ae"]), str(ids["offer_sh"]), "--full-refund",
                    "--reship", "--note", "lost in transit", "--by", "lead")  # fmt: skip
    assert result.exit_code == 0, result.output
    ae, sh = row_of(ws, ids["offer_ae"]), row_of(ws, ids["offer_sh"])
    assert (ae.state, sh.state) == (OutreachState.APPROVED, OutreachState.APPROVED)
    assert Remedies.from_json(ae.remedies) == Remedies(
        full_refund=Decimal("129.90"), reship=True, currency="BRL"
    )
    assert Remedies.from_json(sh.remedies) == Remedies(
        full_refund=Decimal("25.00"), reship=True, currency="USD"
    )
    assert (sh.decided_by, sh.decision_note) == ("lead", "lost in transit")


def test_approve_with_options_is_all_or_nothing(seeded: tuple[Workspace, dict[str, int]]) -> None:
    ws, ids = seeded
    # NV-1 has no value: nothing is composed or approved, the other offer included.
    result = ws.run("log", "approve", str(ids["offer_ae"]), str(ids["offer_nv"]), "--full-refund")
    assert result.exit_code == 1 and "order NV-1 has no value" in result.stderr
    for key in ("offer_ae", "offer_nv"):
        row = row_of(ws, ids[key])
        assert (row.state, row.remedies) == (OutreachState.AWAITING_APPROVAL, "")


def test_approve_all_needs_a_filter_or_yes(seeded: tuple[Workspace, dict[str, int]]) -> None:
    ws, ids = seeded
    unfiltered = ws.run("log", "approve", "--all", "--reship")
    assert unfiltered.exit_code == 1
    assert "--all with no filter" in unfiltered.stderr and "--yes" in unfiltered.stderr
    assert row_of(ws, ids["offer_sh"]).state == OutreachState.AWAITING_APPROVAL
    wrong_kind = ws.run("log", "approve", "--all", "--kind", "reassurance", "--reship")
    assert (
        wrong_kind.exit_code == 1 and "compose refund offers, not reassurance" in wrong_kind.stderr
    )
    confirmed = ws.run("log", "approve", "--all", "--yes", "--reship", "--by", "lead")
    assert confirmed.exit_code == 0, confirmed.output
    for key in ("offer_ae", "offer_sh", "offer_nv"):
        row = row_of(ws, ids[key])
        assert row.state == OutreachState.APPROVED and row.decided_by == "lead"
        assert Remedies.from_json(row.remedies) == Remedies(reship=True)


def test_approve_all_with_a_filter_still_needs_composed_offers(
    seeded: tuple[Workspace, dict[str, int]],
) -> None:
    ws, ids = seeded
    refused = ws.run("log", "approve", "--all", "--country", "BR")
    assert refused.exit_code == 1 and "nobody has composed" in refused.stderr
    accepted = ws.run("log", "approve", "--all", "--country", "BR", "--full-refund")
    assert accepted.exit_code == 0, accepted.output
    assert row_of(ws, ids["offer_ae"]).state == OutreachState.APPROVED
    assert row_of(ws, ids["offer_sh"]).state == OutreachState.AWAITING_APPROVAL


def test_export_carries_situation_next_update_and_remedies(
    seeded: tuple[Workspace, dict[str, int]],
) -> None:
    ws, ids = seeded
    assert ws.run("log", "compose", str(ids["offer_ae"]), "--full-refund").exit_code == 0
    result = ws.run("log", "--kind", "refund_offer", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    offer = rows[ids["offer_ae"]]
    assert Remedies.from_json(offer["remedies"]) == Remedies(
        full_refund=Decimal("129.90"), currency="BRL"
    )
    assert offer["situation"] == "" and offer["next_update_at"] is None
    header = ws.run("log", "--format", "csv").stdout.splitlines()[0].split(",")
    assert {"situation", "next_update_at", "remedies"} <= set(header)
