"""`wa.inbound` MessageReceived: the customer wrote, so their service window (re)opens."""

from __future__ import annotations

from baton_sender.context import SenderContext
from baton_sender.db import repo
from baton_shared.events import Event, MessageReceived
from baton_shared.streams.consumer import Delivery


async def handle(ctx: SenderContext, event: Event, delivery: Delivery) -> None:
    """Move the customer's last-inbound time forward (idempotent: it only grows)."""
    if not isinstance(event, MessageReceived):
        return
    message = event.payload
    async with ctx.db.session() as session:
        await repo.touch_window(
            session, message.phone_number_id, message.customer_id, message.timestamp
        )
    ctx.work.set()
