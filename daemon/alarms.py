"""Operator alarms: raised by whatever found the problem, cleared when the source works again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from daemon.models import Alarm


def raise_alarm(session: Session, source: str, message: str, now: datetime) -> None:
    alarm = session.execute(select(Alarm).where(col(Alarm.source) == source)).scalar_one_or_none()
    if alarm is None:
        session.add(Alarm(source=source, message=message, first_at=now, last_at=now))
        return
    if alarm.cleared_at is not None:  # a new episode
        alarm.first_at = now
        alarm.count = 0
        alarm.cleared_at = None
        alarm.notified_at = None
    alarm.message = message
    alarm.last_at = now
    alarm.count += 1
    session.add(alarm)


def clear_alarm(session: Session, source: str, now: datetime) -> None:
    alarm = session.execute(
        select(Alarm).where(col(Alarm.source) == source, col(Alarm.cleared_at).is_(None))
    ).scalar_one_or_none()
    if alarm is not None:
        alarm.cleared_at = now
        session.add(alarm)


def open_alarms(session: Session) -> list[Alarm]:
    return list(
        session.execute(
            select(Alarm).where(col(Alarm.cleared_at).is_(None)).order_by(col(Alarm.first_at))
        ).scalars()
    )
