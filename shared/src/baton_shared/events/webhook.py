"""Events of the raw webhook stream (`wa.webhooks`)."""

from __future__ import annotations

from datetime import datetime
from json.encoder import encode_basestring
from typing import ClassVar, Literal

from baton_shared.events.envelope import Event, Payload, new_traceparent, uuid_text
from baton_shared.randomness import random_bits
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


def webhook_received_fields(
    body: str, signature: str, received_at: datetime, *, event_id: str, producer: str
) -> dict[str, str]:
    """The stream fields of `WebhookReceived.create(WebhookBody(body, signature, received_at),
    producer=producer, event_id=event_id)` with `occurred_at` = `received_at`, written
    directly.

    The ingress request path builds one per webhook, thousands a second; validating a model
    and serialising it costs several times this. The result is byte-for-byte what
    `entry_fields` gives for that event (tests/unit/shared/test_events.py compares the two),
    so a change to the envelope that this function misses fails that test."""
    at = _iso(received_at)
    traceparent = new_traceparent()
    envelope = (
        f'{{"event_id":"{event_id}","event_type":"webhook.received","schema_version":1,'
        f'"occurred_at":"{at}","producer":{encode_basestring(producer)},'
        f'"conversation_id":null,"correlation_id":"{_random_uuid()}","causation_id":null,'
        f'"traceparent":{encode_basestring(traceparent)},"payload":{{'
        f'"body":{encode_basestring(body)},"signature":{encode_basestring(signature)},'
        f'"received_at":"{at}"}}}}'
    )
    return {
        "event_id": event_id,
        "event_type": "webhook.received",
        "schema_version": "1",
        "conversation_id": "",
        "body": envelope,
    }


def _random_uuid() -> str:
    """`envelope.random_uuid` as text (see there why not `uuid.uuid4`), without a `UUID`."""
    return uuid_text(f"{random_bits(128):032x}", 4)


def _iso(moment: datetime) -> str:
    """`moment` as pydantic writes it: ISO 8601, microseconds only when non-zero, UTC as `Z`."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
