"""What the buffer subscribes to: customer messages and the agent's turn completions.

Both streams are consumed a read batch at a time (`BatchConsumer`): one transaction and one
timer update per batch instead of per entry, in stream order. Order matters here: messages of
a turn are ordered by WhatsApp timestamp, then arrival, and WhatsApp timestamps have
one-second resolution, so arrival order decides within a second."""

from __future__ import annotations

from baton_buffer.context import BufferContext
from baton_buffer.handlers import message_received, turn_completed
from baton_buffer.settings import BufferSettings
from baton_shared.events import MessageReceived, TurnCompleted
from baton_shared.runtime import Runtime
from baton_shared.streams import names
from baton_shared.streams.batch import BatchConsumer


def register(runtime: Runtime, ctx: BufferContext, settings: BufferSettings) -> None:
    """Consume `wa.inbound` and `conv.turns.done` in the `buffer` group."""
    for stream, event_type, handlers in (
        (names.WA_INBOUND, MessageReceived, message_received),
        (names.CONV_TURNS_DONE, TurnCompleted, turn_completed),
    ):
        runtime.workers.append(
            BatchConsumer(
                runtime.bus,
                stream=stream,
                group=names.GROUP_BUFFER,
                name=runtime.consumer_name,
                event_type=event_type,
                batch_handler=handlers.make_batch_handler(ctx),
                handler=handlers.make_handler(ctx),
                batch=settings.inbound_batch,
                block_ms=settings.consumer_block_ms,
                reclaim_idle_ms=settings.reclaim_idle_ms,
                max_deliveries=settings.max_deliveries,
            )
        )
