"""`conversation.turn_completed`: free the conversation so its next burst can be released."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from baton_buffer import metrics
from baton_buffer.context import BufferContext
from baton_buffer.db import repo
from baton_buffer.release import release_due
from baton_shared.events import Event, TurnCompleted
from baton_shared.streams.batch import BatchHandler
from baton_shared.streams.consumer import Delivery, Handler

log = logging.getLogger(__name__)


def make_batch_handler(ctx: BufferContext) -> BatchHandler:
    """The `conv.turns.done` handler of a read batch, bound to `ctx`."""

    async def handle_batch(events: Sequence[Event]) -> None:
        """Record the turns' outcomes, end those in flight and release the next bursts that
        are due already, in one transaction; then schedule the others."""
        reports = [
            (event.payload.turn_id, event.payload.outcome.value)
            for event in events
            if isinstance(event, TurnCompleted)
        ]
        if not reports:
            return
        at = datetime.fromtimestamp(ctx.clock(), UTC)
        async with ctx.db.session() as session:
            completions = await repo.complete_turns(session, reports, at)
            released = await release_due(
                session, ctx, sorted({c.conversation_id for c in completions.values()})
            )
        await released.committed(ctx)
        counted: set[object] = set()
        for turn_id, outcome in reports:
            completion = completions.get(turn_id)
            if completion is None:
                log.warning("completion of unknown turn %s ignored", turn_id)
            elif completion.first_report and turn_id not in counted:
                counted.add(turn_id)
                metrics.TURNS_COMPLETED.labels(outcome).inc()
        # Also on a redelivery: the first delivery may have crashed before scheduling.
        await ctx.timers.schedule_many(released.deadlines())

    return handle_batch


def make_handler(ctx: BufferContext) -> Handler:
    """The `conv.turns.done` handler of one entry, bound to `ctx`."""
    handle_batch = make_batch_handler(ctx)

    async def handle(event: Event, delivery: Delivery) -> None:
        """Record the turn's outcome, end it if in flight, and schedule the pending burst."""
        await handle_batch([event])

    return handle
