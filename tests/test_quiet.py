"""Quiet hours in the buyer's own time zone, across midnight and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from daemon.quiet import in_quiet_hours, quiet_until

NIGHT = (time(21, 0), time(8, 0))


@pytest.mark.parametrize(
    ("local", "quiet"),
    [(time(20, 59), False), (time(21, 0), True), (time(23, 30), True), (time(3, 0), True),
     (time(7, 59), True), (time(8, 0), False), (time(12, 0), False)],
)  # fmt: skip
def test_overnight_range(local: time, quiet: bool) -> None:
    assert in_quiet_hours(local, *NIGHT) is quiet


def test_daytime_range_and_empty_range() -> None:
    assert in_quiet_hours(time(13, 0), time(12, 0), time(14, 0))
    assert not in_quiet_hours(time(11, 0), time(12, 0), time(14, 0))
    assert not in_quiet_hours(time(3, 0), time(0, 0), time(0, 0))


def test_sao_paulo_evening_waits_for_the_next_morning() -> None:
    now = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)  # 22:30 in Sao Paulo (UTC-3)
    assert quiet_until(now, "America/Sao_Paulo", *NIGHT) == datetime(
        2026, 11, 23, 11, 0, tzinfo=UTC
    )


def test_moscow_small_hours_wait_until_eight_the_same_day() -> None:
    now = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # 03:30 in Moscow (UTC+3)
    assert quiet_until(now, "Europe/Moscow", *NIGHT) == datetime(2026, 11, 23, 5, 0, tzinfo=UTC)


def test_daytime_is_not_quiet() -> None:
    now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 12:00 in Sao Paulo
    assert quiet_until(now, "America/Sao_Paulo", *NIGHT) is None


def test_dst_night_in_berlin_resumes_at_local_eight() -> None:
    now = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # 23:00 CET, the night clocks go forward
    resume = quiet_until(now, "Europe/Berlin", *NIGHT)
    assert resume == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST
