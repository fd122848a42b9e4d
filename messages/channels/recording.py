"""A channel that records instead of sending, for tests of the send job (like django-anymail's test
backend). It can be told to fail the next sends with given errors."""

from __future__ import annotations

from collections import deque

from messages.channels.base import OutgoingMessage, Receipt, ReceiptStatus, SendError


class RecordingChannel:
    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.sent: list[OutgoingMessage] = []
        self._failures: deque[SendError] = deque()

    def fail_next(self, *errors: SendError) -> None:
        """Raise these errors, one per call, before recording anything again."""
        self._failures.extend(errors)

    async def send(self, message: OutgoingMessage) -> Receipt:
        if self._failures:
            raise self._failures.popleft()
        self.sent.append(message)
        return Receipt(self.name, message.message_id, ReceiptStatus.RECORDED, "recorded")
