"""`conversation.turn_completed`: free the conversation so its next burst can be released."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from baton_buffer import metrics
from baton_buffer.context import BufferContext
from baton_buffer.db import repo
from baton_shared.events import Event, TurnCompleted
from baton_shared.streams.consumer import Delivery, Handler

log = logging.getLogger(__name__)


def make_handler(ctx: BufferContext) -> Handler:
    """The `conv.turns.done` handler bound to `ctx`."""

    async def handle(event: Event, delivery: Delivery) -> None:
        """Record the turn's outcome, end it if in flight, and schedule the pending burst."""
        if not isinstance(event, TurnCompleted):
            return
        result = event.payload
        at = datetime.fromtimestamp(ctx.clock(), UTC)
        async with ctx.db.session() as session:
            completion = await repo.complete_turn(session, result.turn_id, result.outcome.value, at)
        if completion is None:
            log.warning("completion of unknown turn %s ignored", result.turn_id)
            return
        if completion.first_report:
            metrics.TURNS_COMPLETED.labels(result.outcome.value).inc()
        # Also on a redelivery: the first delivery may have crashed before rescheduling.
        await ctx.reschedule(completion.conversation_id)

    return handle
