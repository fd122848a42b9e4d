"""Quiet hours: no buyer message leaves while it is night where the buyer lives."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the range crosses midnight (21:00-08:00)


def quiet_until(now: datetime, timezone: str, start: time, end: time) -> datetime | None:
    """When the buyer's quiet hours end (UTC), or None if it is not quiet there now."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    if not in_quiet_hours(local.time().replace(tzinfo=None), start, end):
        return None
    day = local.date()
    if local.time().replace(tzinfo=None) >= end and start > end:
        day += timedelta(days=1)
    # fold=0 and the wall-clock round trip handle DST: a nonexistent 08:00 resolves forward.
    resume = datetime.combine(day, end, tzinfo=zone)
    return resume.astimezone(UTC)
