"""Routing: the carrier's own API where we have one, the aggregator otherwise and as the fallback."""

from __future__ import annotations

import pytest

from carriers.routing import Overrides, candidates, route


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("QQ850419295BR", "correios"),
        ("RA644000005RU", "russianpost"),
        ("45008378901234", "russianpost"),
        ("RR123456785CN", "seventeentrack"),
        ("YT2412345678901234", "seventeentrack"),
        ("LP00612345678901", "seventeentrack"),
        ("EA123456785US", "seventeentrack"),
        ("garbage", "seventeentrack"),
    ],
)
def test_default_route_by_format(number: str, expected: str) -> None:
    assert route(number) == expected


def test_country_override_sends_china_post_numbers_to_the_destination_post() -> None:
    overrides = Overrides(by_country={"br": "correios"})
    assert route("RR123456785CN", "BR", overrides=overrides) == "correios"
    assert route("RR123456785CN", "RU", overrides=overrides) == "seventeentrack"


def test_carrier_name_override_wins_over_country_and_format() -> None:
    overrides = Overrides(
        by_country={"BR": "correios"}, by_carrier_name={"YunExpress": "seventeentrack"}
    )
    assert (
        route("QQ850419295BR", "BR", carrier_name="yunexpress", overrides=overrides)
        == "seventeentrack"
    )


def test_disabled_adapter_falls_back_to_the_aggregator() -> None:
    assert route("QQ850419295BR", enabled={"seventeentrack"}) == "seventeentrack"
    assert route("QQ850419295BR", enabled={"seventeentrack", "correios"}) == "correios"


def test_candidates_list_issuing_and_destination_posts_then_the_aggregator() -> None:
    assert candidates("QQ850419295BR") == ["correios", "seventeentrack"]
    assert candidates("RR123456785CN", "BR") == ["correios", "seventeentrack"]
    assert candidates("45008378901234") == ["russianpost", "seventeentrack"]
    assert candidates("YT2412345678901234") == ["seventeentrack"]
