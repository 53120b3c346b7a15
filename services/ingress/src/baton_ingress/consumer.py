"""What ingress subscribes to: its own raw webhook stream, as group `ingress`.

`wa.webhooks` is handled a read batch at a time (`BatchConsumer`): one transaction per
XREADGROUP batch, in stream order; a failed batch falls back to entry-by-entry handling with
the shared retry and dead-letter rules."""

from __future__ import annotations

from baton_ingress.handlers.webhook_received import WebhookReceivedHandler
from baton_ingress.settings import IngressSettings
from baton_shared.events import WebhookReceived
from baton_shared.runtime import Runtime
from baton_shared.streams import names
from baton_shared.streams.batch import BatchConsumer


def register_consumers(runtime: Runtime, settings: IngressSettings) -> BatchConsumer:
    """Register the webhook worker (the runtime trims the stream it reads: `Runtime.start`)."""
    handler = WebhookReceivedHandler(runtime.db, runtime.bus, settings)
    consumer = BatchConsumer(
        runtime.bus,
        stream=names.WA_WEBHOOKS,
        group=names.GROUP_INGRESS,
        name=runtime.consumer_name,
        event_type=WebhookReceived,
        delivered_batch_handler=handler.handle_batch,
        handler=handler,
        batch=settings.worker_batch,
        block_ms=settings.consumer_block_ms,
        reclaim_idle_ms=settings.reclaim_idle_ms,
        max_deliveries=settings.max_deliveries,
        log_events=runtime.observability.log_events,
    )
    runtime.workers.append(consumer)
    runtime.consumers.append(consumer)
    return consumer
