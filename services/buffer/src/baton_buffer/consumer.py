"""What the buffer subscribes to: customer messages and the agent's turn completions.

Both streams are consumed a read batch at a time (`BatchConsumer`): one transaction and one
timer update per batch instead of per entry. Messages of a turn are ordered by WhatsApp
timestamp, which has one-second resolution: within a second their entries' order on
`wa.inbound` decides (each message keeps its entry's position), so that a later entry that
another replica records first still comes second."""

from __future__ import annotations

from typing import Any

from baton_buffer.context import BufferContext
from baton_buffer.handlers import message_received, turn_completed
from baton_buffer.settings import BufferSettings
from baton_shared.events import MessageReceived, TurnCompleted
from baton_shared.runtime import Runtime
from baton_shared.streams import names
from baton_shared.streams.batch import BatchConsumer


def register(runtime: Runtime, ctx: BufferContext, settings: BufferSettings) -> None:
    """Consume `wa.inbound` and `conv.turns.done` in the `buffer` group."""
    common: dict[str, Any] = {
        "group": names.GROUP_BUFFER,
        "name": runtime.consumer_name,
        "batch": settings.inbound_batch,
        "block_ms": settings.consumer_block_ms,
        "reclaim_idle_ms": settings.reclaim_idle_ms,
        "max_deliveries": settings.max_deliveries,
    }
    runtime.workers.append(
        BatchConsumer(
            runtime.bus,
            stream=names.WA_INBOUND,
            event_type=MessageReceived,
            delivered_batch_handler=message_received.make_batch_handler(ctx),
            handler=message_received.make_handler(ctx),
            **common,
        )
    )
    runtime.workers.append(
        BatchConsumer(
            runtime.bus,
            stream=names.CONV_TURNS_DONE,
            event_type=TurnCompleted,
            batch_handler=turn_completed.make_batch_handler(ctx),
            handler=turn_completed.make_handler(ctx),
            **common,
        )
    )
