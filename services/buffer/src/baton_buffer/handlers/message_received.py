"""`inbound.message_received`: record the message once and set its conversation's timer."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from baton_buffer import metrics
from baton_buffer.context import BufferContext
from baton_buffer.db import repo
from baton_shared.events import Event, MessageReceived, conversation_id_for
from baton_shared.streams.consumer import Delivery, Handler

log = logging.getLogger(__name__)


def make_handler(ctx: BufferContext) -> Handler:
    """The `wa.inbound` handler bound to `ctx`."""

    async def handle(event: Event, delivery: Delivery) -> None:
        """Record a customer message (once per WhatsApp id) and schedule its burst."""
        if not isinstance(event, MessageReceived):
            return
        message = event.payload
        conversation_id = event.conversation_id or conversation_id_for(
            message.phone_number_id, message.customer_id
        )
        arrived_at = datetime.fromtimestamp(ctx.clock(), UTC)
        async with ctx.db.session() as session:
            recorded = await repo.record_message(session, event, conversation_id, arrived_at)
        metrics.MESSAGES.labels("recorded" if recorded else "duplicate").inc()
        if not recorded:
            log.info(
                "duplicate message %s ignored",
                message.message_id,
                extra={"conversation_id": conversation_id, "event_id": event.event_id},
            )
        # Even for a duplicate: a crash after the commit above and before this line must not
        # leave a recorded message without a timer, and scheduling is idempotent.
        await ctx.reschedule(conversation_id)

    return handle
