"""`webhook.received` → archive, de-duplicate, and emit typed inbound events, in one transaction."""

from __future__ import annotations

import logging

from baton_ingress import metrics
from baton_ingress.db import repo
from baton_ingress.dead_letter import dead_letter_parts
from baton_ingress.parsing import ParsedWebhook, parse_webhook
from baton_ingress.parsing.statuses import status_customer
from baton_ingress.settings import IngressSettings
from baton_shared.db import Database, add_to_outbox, claim_inbox
from baton_shared.events import (
    Event,
    MessageReceived,
    PlatformErrorReceived,
    StatusReceived,
    WebhookReceived,
    conversation_id_for,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.streams.consumer import Delivery

log = logging.getLogger(__name__)
PRODUCER = "ingress"


class WebhookReceivedHandler:
    """Turns each accepted webhook body into `MessageReceived`, `StatusReceived` and
    `PlatformErrorReceived` events, each new WhatsApp message or status exactly once."""

    def __init__(self, db: Database, bus: Bus, settings: IngressSettings) -> None:
        self.db = db
        self.bus = bus
        self.allowed_numbers = settings.allowed_phone_number_ids

    async def __call__(self, event: Event, delivery: Delivery) -> None:
        """Handle one `wa.webhooks` entry (other event types are not ours and are skipped)."""
        if not isinstance(event, WebhookReceived):
            return
        parsed = parse_webhook(
            event.payload.body,
            received_at=event.payload.received_at,
            allowed_numbers=self.allowed_numbers,
        )
        async with self.db.session() as session:
            if not await claim_inbox(session, names.GROUP_INGRESS, event.event_id):
                return
            await repo.archive_webhook(session, event)
            fresh_messages = await repo.claim_messages(
                session, [(m.message_id, m.phone_number_id) for m in parsed.messages]
            )
            fresh_statuses = await repo.claim_statuses(
                session, [(s.message_id, _raw_status(s.raw, s.status)) for s in parsed.statuses]
            )
            events = build_events(event, parsed, fresh_messages, fresh_statuses)
            await add_to_outbox(session, *events)
            if parsed.rejections:
                await dead_letter_parts(self.bus, event, delivery, parsed.rejections)
        _count(parsed, events)


def build_events(
    cause: WebhookReceived,
    parsed: ParsedWebhook,
    fresh_messages: set[str],
    fresh_statuses: set[tuple[str, str]],
) -> list[Event]:
    """The events of a parsed body, in body order, skipping what was emitted before."""
    events: list[Event] = []
    fresh_messages, fresh_statuses = set(fresh_messages), set(fresh_statuses)
    for message in parsed.messages:
        if message.message_id not in fresh_messages:
            continue
        fresh_messages.discard(message.message_id)  # a repeat inside one body too
        events.append(
            MessageReceived.create(
                message,
                producer=PRODUCER,
                cause=cause,
                conversation_id=conversation_id_for(message.phone_number_id, message.customer_id),
            )
        )
    for status in parsed.statuses:
        key = (status.message_id, _raw_status(status.raw, status.status))
        if key not in fresh_statuses:
            continue
        fresh_statuses.discard(key)
        customer = status_customer(status)
        conversation: str | None = (
            conversation_id_for(status.phone_number_id, customer) if customer else None
        )
        events.append(
            StatusReceived.create(
                status, producer=PRODUCER, cause=cause, conversation_id=conversation
            )
        )
    events += [
        PlatformErrorReceived.create(errors, producer=PRODUCER, cause=cause)
        for errors in parsed.errors
    ]
    return events


def _raw_status(raw: dict[str, object], parsed: str) -> str:
    """The status as WhatsApp spelled it: two unknown statuses must not collide."""
    value = raw.get("status")
    return value if isinstance(value, str) else parsed


def _count(parsed: ParsedWebhook, events: list[Event]) -> None:
    for kind, found, cls in (
        ("message", len(parsed.messages), MessageReceived),
        ("status", len(parsed.statuses), StatusReceived),
    ):
        emitted = sum(isinstance(e, cls) for e in events)
        metrics.UPDATES.labels(kind, "emitted").inc(emitted)
        metrics.UPDATES.labels(kind, "duplicate").inc(found - emitted)
    metrics.UPDATES.labels("error", "emitted").inc(len(parsed.errors))
    if parsed.ignored_fields:
        log.info("ignored webhook fields: %s", ", ".join(parsed.ignored_fields))
