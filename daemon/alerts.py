"""Staff alerts that belong to no single order: a carrier that keeps failing, offers left waiting.

They ride on the `alarms` table: a carrier alarm is raised by the poll job; "approvals waiting" is
raised here when refund offers have waited longer than `APPROVAL_PATIENCE`. Each open alarm is
mailed to `store.staff_email` once per episode (`notified_at`), and the approvals reminder again
after `REMIND_AFTER` if the offers are still waiting. Without a staff address the alarms still
show in `parcelwatch status` and in the log, which is where staff look.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from daemon.alarms import clear_alarm, open_alarms, raise_alarm
from daemon.config import Config
from daemon.db import session_scope
from daemon.leases import OUTREACH
from daemon.models import OutreachState
from messages.channels.base import (
    Channel,
    OutgoingMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
    make_message_id,
)
from messages.context import StaffContext
from messages.kinds import Kind
from messages.render import render

log = logging.getLogger("parcelwatch.alerts")

APPROVALS = "approvals"
APPROVAL_PATIENCE = timedelta(hours=4)  # an offer waiting longer than this needs a nudge
REMIND_AFTER = timedelta(hours=24)


@dataclass
class StaffAlerts:
    engine: Engine
    config: Config
    clock: Callable[[], datetime]
    channels: Mapping[str, Channel]

    async def run_once(self) -> int:
        """Raise or clear the approvals alarm, then mail every alarm not yet told. Returns mails."""
        now = self.clock()
        self._approvals(now)
        address = self.config.store.staff_email
        channel = self.channels.get("email")
        if not address or channel is None:
            return 0
        with session_scope(self.engine) as session:
            due = [
                (a.id, a.source, a.message, a.first_at, a.count)
                for a in open_alarms(session)
                if a.notified_at is None
                or (a.source == APPROVALS and now - a.notified_at >= REMIND_AFTER)
            ]
        sent = 0
        for alarm_id, source, message, since, count in due:
            kind, context = self._context(source, message, since, count)
            rendered = render(kind.value, context, self.config.store.default_locale)
            domain = self.config.store.from_address.rpartition("@")[2]
            key = f"alarm-{alarm_id}-{int(now.timestamp())}"
            mail = OutgoingMessage.compose(
                rendered,
                message_id=make_message_id(key, domain),
                to_address=address,
                to_name=self.config.store.name,
                kind=kind.value,
            )
            try:
                await channel.send(mail)
            except (RetryableSendError, PermanentSendError, SendError) as exc:
                log.warning("staff alert not sent", extra={"alarm": source, "reason": exc.reason})
                continue
            with session_scope(self.engine) as session:
                for alarm in open_alarms(session):
                    if alarm.id == alarm_id:
                        alarm.notified_at = now
                        session.add(alarm)
            sent += 1
        return sent

    def _approvals(self, now: datetime) -> None:
        with session_scope(self.engine) as session:
            waiting, oldest = session.execute(
                select(func.count(), func.min(OUTREACH.c.created_at)).where(
                    OUTREACH.c.state == OutreachState.AWAITING_APPROVAL,
                    OUTREACH.c.created_at <= now - APPROVAL_PATIENCE,
                )
            ).one()
            if waiting:
                raise_alarm(
                    session,
                    APPROVALS,
                    f"{waiting} refund offers waiting for approval since {oldest:%Y-%m-%d %H:%M} UTC",
                    now,
                )
            else:
                clear_alarm(session, APPROVALS, now)

    def _context(
        self, source: str, message: str, since: datetime, count: int
    ) -> tuple[Kind, StaffContext]:
        store = self.config.store.name
        if source == APPROVALS:
            with session_scope(self.engine) as session:
                waiting = session.execute(
                    select(func.count()).where(OUTREACH.c.state == OutreachState.AWAITING_APPROVAL)
                ).scalar_one()
            return Kind.STAFF_APPROVALS_WAITING, StaffContext(
                store_name=store,
                count=int(waiting),
                oldest_at=since,
                reason=message,
                command_hint="parcelwatch log --state awaiting_approval",
            )
        carrier = source.partition(":")[2] or source
        return Kind.STAFF_CARRIER_OUTAGE, StaffContext(
            store_name=store,
            carrier=carrier,
            since=since,
            last_error=message,
            reason=f"{count} failed polling rounds so far",
            command_hint="parcelwatch status",
        )
