"""`webhook.received` → archive, de-duplicate, and emit typed inbound events: a read batch of
webhook bodies in one transaction."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from baton_ingress import metrics
from baton_ingress.db import repo
from baton_ingress.dead_letter import dead_letter_parts
from baton_ingress.parsing import ParsedWebhook, parse_webhook
from baton_ingress.parsing.statuses import status_customer
from baton_ingress.settings import IngressSettings
from baton_shared.db import Database, add_to_outbox
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

_Parsed = tuple[WebhookReceived, Delivery, ParsedWebhook]


class WebhookReceivedHandler:
    """Turns accepted webhook bodies into `MessageReceived`, `StatusReceived` and
    `PlatformErrorReceived` events, each new WhatsApp message or status exactly once."""

    def __init__(self, db: Database, bus: Bus, settings: IngressSettings) -> None:
        self.db = db
        self.bus = bus
        self.allowed_numbers = settings.allowed_phone_number_ids

    async def __call__(self, event: Event, delivery: Delivery) -> None:
        """Handle one `wa.webhooks` entry (redeliveries, and the entries of a failed batch)."""
        await self.handle_batch([(event, delivery)])

    async def handle_batch(self, items: Sequence[tuple[Event, Delivery]]) -> None:
        """Handle a read batch in stream order, in one transaction: claim the inbox, archive the
        bodies, claim message ids and statuses, stage the events in the outbox. Parts that
        cannot become events go to the DLQ (raw body kept) before the commit; the rest of the
        batch goes on. Other event types are not ours and are skipped."""
        batch = self._parse(items)
        if not batch:
            return
        async with self.db.session() as session:
            fresh = await repo.claim_inbox_many(
                session, names.GROUP_INGRESS, [event.event_id for event, _, _ in batch]
            )
            todo = [item for item in batch if _first_claim(item[0], fresh)]
            if not todo:
                return
            await repo.archive_webhooks(session, [event for event, _, _ in todo])
            fresh_messages = await repo.claim_messages(
                session,
                [(m.message_id, m.phone_number_id) for _, _, p in todo for m in p.messages],
            )
            fresh_statuses = await repo.claim_statuses(
                session,
                [
                    (s.message_id, _raw_status(s.raw, s.status))
                    for _, _, p in todo
                    for s in p.statuses
                ],
            )
            events: list[Event] = []
            for event, _, parsed in todo:
                events += build_events(event, parsed, fresh_messages, fresh_statuses)
            await add_to_outbox(session, *events)
            for event, delivery, parsed in todo:
                if parsed.rejections:
                    await dead_letter_parts(self.bus, event, delivery, parsed.rejections)
        _count([parsed for _, _, parsed in todo], events)

    def _parse(self, items: Sequence[tuple[Event, Delivery]]) -> list[_Parsed]:
        return [
            (
                event,
                delivery,
                parse_webhook(
                    event.payload.body,
                    received_at=event.payload.received_at,
                    allowed_numbers=self.allowed_numbers,
                ),
            )
            for event, delivery in items
            if isinstance(event, WebhookReceived)
        ]


def _first_claim(event: WebhookReceived, fresh: set[uuid.UUID]) -> bool:
    """True once per freshly claimed event id (an id twice in one batch is handled once)."""
    if event.event_id not in fresh:
        return False
    fresh.discard(event.event_id)
    return True


def build_events(
    cause: WebhookReceived,
    parsed: ParsedWebhook,
    fresh_messages: set[str],
    fresh_statuses: set[tuple[str, str]],
) -> list[Event]:
    """The events of a parsed body, in body order, skipping what was emitted before.

    Takes what it emits out of `fresh_messages` and `fresh_statuses`: a message repeated
    later in this body, or in a later body of the same batch, is emitted once."""
    events: list[Event] = []
    for message in parsed.messages:
        if message.message_id not in fresh_messages:
            continue
        fresh_messages.discard(message.message_id)
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


_MESSAGES_EMITTED = metrics.UPDATES.labels("message", "emitted")
_MESSAGES_DUPLICATE = metrics.UPDATES.labels("message", "duplicate")
_STATUSES_EMITTED = metrics.UPDATES.labels("status", "emitted")
_STATUSES_DUPLICATE = metrics.UPDATES.labels("status", "duplicate")
_ERRORS_EMITTED = metrics.UPDATES.labels("error", "emitted")


def _count(parsed: Sequence[ParsedWebhook], events: list[Event]) -> None:
    messages = sum(isinstance(e, MessageReceived) for e in events)
    statuses = sum(isinstance(e, StatusReceived) for e in events)
    _MESSAGES_EMITTED.inc(messages)
    _MESSAGES_DUPLICATE.inc(sum(len(p.messages) for p in parsed) - messages)
    _STATUSES_EMITTED.inc(statuses)
    _STATUSES_DUPLICATE.inc(sum(len(p.statuses) for p in parsed) - statuses)
    _ERRORS_EMITTED.inc(sum(len(p.errors) for p in parsed))
    ignored = sorted({field for p in parsed for field in p.ignored_fields})
    if ignored:
        log.info("ignored webhook fields: %s", ", ".join(ignored))
