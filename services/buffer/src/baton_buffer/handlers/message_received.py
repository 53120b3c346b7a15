"""`inbound.message_received`: record the message once and set its conversation's timer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from baton_buffer import metrics
from baton_buffer.context import BufferContext
from baton_buffer.db import repo
from baton_buffer.release import release_or_schedule
from baton_shared.events import Event, MessageReceived, conversation_id_for
from baton_shared.streams.batch import DeliveredBatchHandler
from baton_shared.streams.bus import position
from baton_shared.streams.consumer import Delivery, Handler

log = logging.getLogger(__name__)


def make_batch_handler(ctx: BufferContext) -> DeliveredBatchHandler:
    """The `wa.inbound` handler of a read batch, bound to `ctx`."""

    async def handle_batch(batch: Sequence[tuple[Event, Delivery]]) -> None:
        """Record customer messages (once per WhatsApp id), each with its entry's position
        in the stream, in one transaction; then release the bursts due already and schedule
        the others."""
        items = [
            repo.Inbound(
                event,
                event.conversation_id
                or conversation_id_for(event.payload.phone_number_id, event.payload.customer_id),
                position(delivery.entry_id),
            )
            for event, delivery in batch
            if isinstance(event, MessageReceived)
        ]
        if not items:
            return
        arrived_at = datetime.fromtimestamp(ctx.clock(), UTC)
        async with ctx.db.session() as session:
            recorded = await repo.record_messages(session, items, arrived_at)
        duplicates = [
            (i.event, i.conversation_id)
            for i in items
            if i.event.payload.message_id not in recorded
        ]
        metrics.MESSAGES.labels("recorded").inc(len(items) - len(duplicates))
        metrics.MESSAGES.labels("duplicate").inc(len(duplicates))
        for event, conversation_id in duplicates:
            log.info(
                "duplicate message %s ignored",
                event.payload.message_id,
                extra={"conversation_id": conversation_id, "event_id": event.event_id},
            )
        # Even for a duplicate: a crash after the commit above and before this line must not
        # leave a recorded message without a timer, and scheduling is idempotent.
        await release_or_schedule(ctx, [i.conversation_id for i in items])

    return handle_batch


def make_handler(ctx: BufferContext) -> Handler:
    """The `wa.inbound` handler of one entry (redeliveries, failed batches), bound to `ctx`."""
    handle_batch = make_batch_handler(ctx)

    async def handle(event: Event, delivery: Delivery) -> None:
        """Record a customer message (once per WhatsApp id) and schedule its burst."""
        await handle_batch([(event, delivery)])

    return handle
