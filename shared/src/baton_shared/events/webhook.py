"""Events of the raw webhook stream (`wa.webhooks`)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from baton_shared.events.envelope import Event, Payload
from baton_shared.streams import names


class WebhookBody(Payload):
    """A signed WhatsApp webhook body exactly as it arrived.

    Attributes:
        body: the raw request body (UTF-8 JSON text, byte-for-byte as signed).
        signature: the `X-Hub-Signature-256` header it arrived with.
        received_at: when ingress accepted it (UTC).
    """

    body: str
    signature: str
    received_at: datetime


class WebhookReceived(Event):
    """A webhook passed the signature check and was accepted with HTTP 200."""

    stream: ClassVar[str] = names.WA_WEBHOOKS
    event_type: Literal["webhook.received"] = "webhook.received"
    schema_version: Literal[1] = 1
    payload: WebhookBody
