"""What ingress subscribes to: its own raw webhook stream, as group `ingress`."""

from __future__ import annotations

from baton_ingress.handlers.webhook_received import WebhookReceivedHandler
from baton_ingress.settings import IngressSettings
from baton_shared.runtime import Runtime
from baton_shared.streams import names
from baton_shared.streams.consumer import Consumer


def register_consumers(runtime: Runtime, settings: IngressSettings) -> Consumer:
    """Register the webhook worker on `runtime`."""
    handler = WebhookReceivedHandler(runtime.db, runtime.bus, settings)
    return runtime.consume(names.WA_WEBHOOKS, names.GROUP_INGRESS, handler)
