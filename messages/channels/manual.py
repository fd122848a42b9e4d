"""The manual channel: staff send the message by hand from the marketplace's chat.

It stores nothing itself. Its receipt says "awaiting staff"; the send job keeps the rendered message
in the outreach log in a state that `parcelwatch log mark-sent ID` closes.
"""

from __future__ import annotations

from messages.channels.base import OutgoingMessage, Receipt, ReceiptStatus


class ManualChannel:
    name = "manual"

    async def send(self, message: OutgoingMessage) -> Receipt:
        return Receipt(
            channel=self.name,
            message_id=message.message_id,
            status=ReceiptStatus.AWAITING_STAFF,
            detail="waiting for staff to send it from the marketplace chat",
        )
