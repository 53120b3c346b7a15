"""What the sender subscribes to: commands, statuses, and inbound messages (for windows).

`wa.outbound` is recorded a read batch at a time (`BatchConsumer`): one transaction per
XREADGROUP batch, in stream order; a failed batch falls back to entry-by-entry handling with
the shared retry and dead-letter rules."""

from __future__ import annotations

from functools import partial

from baton_sender.context import SenderContext
from baton_sender.handlers import message_received, message_requested, status_received
from baton_shared.events import MessageRequested
from baton_shared.runtime import Runtime
from baton_shared.streams import names
from baton_shared.streams.batch import BatchConsumer


def register(runtime: Runtime, ctx: SenderContext) -> None:
    """Register the sender's consumers (all in group `sender`) on the runtime."""
    s = runtime.settings
    outbound = BatchConsumer(
        runtime.bus,
        stream=names.WA_OUTBOUND,
        group=names.GROUP_SENDER,
        name=runtime.consumer_name,
        event_type=MessageRequested,
        delivered_batch_handler=partial(message_requested.handle_batch, ctx),
        handler=partial(message_requested.handle, ctx),
        batch=ctx.settings.ingest_batch,
        block_ms=s.consumer_block_ms,
        reclaim_idle_ms=s.reclaim_idle_ms,
        max_deliveries=s.max_deliveries,
        log_events=runtime.observability.log_events,
    )
    runtime.workers.append(outbound)
    runtime.consumers.append(outbound)
    runtime.consume(names.WA_STATUSES, names.GROUP_SENDER, partial(status_received.handle, ctx))
    runtime.consume(names.WA_INBOUND, names.GROUP_SENDER, partial(message_received.handle, ctx))
