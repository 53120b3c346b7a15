"""Parts of a webhook that cannot become events go to `wa.webhooks.dlq`, raw body kept."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from baton_ingress import metrics
from baton_ingress.parsing import Rejection
from baton_shared.events import WebhookReceived
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, entry_fields
from baton_shared.streams.consumer import Delivery

log = logging.getLogger(__name__)


def rejection_reason(rejections: Sequence[Rejection]) -> str:
    """One line per rejected part: `where: reason`."""
    return "\n".join(f"{r.where}: {r.reason}" for r in rejections)[:4000]


async def dead_letter_parts(
    bus: Bus, event: WebhookReceived, delivery: Delivery, rejections: Sequence[Rejection]
) -> None:
    """Append the whole webhook event (raw body included) to the DLQ with the reasons.

    The entry has the same fields as the consumer's own DLQ entries, so the same tools read
    both. Written before the worker's commit: a crash may repeat it, never lose it.

    Its event id is derived from the webhook's (`rejected_parts_id`): the worker's inbox
    holds the webhook's own id once this batch commits, so an entry re-driven under it
    (`baton-dlq redrive`, once the cause is fixed) would be skipped as handled. Under the new
    id it is handled again, and only the parts refused before become events: the others are
    recognised by their WhatsApp ids and statuses.
    """
    fields: dict[Any, Any] = {
        **entry_fields(event.model_copy(update={"event_id": rejected_parts_id(event.event_id)})),
        "dlq_stream": delivery.stream,
        "dlq_group": names.GROUP_INGRESS,
        "dlq_entry_id": delivery.entry_id,
        "dlq_deliveries": str(delivery.count),
        "dlq_error": rejection_reason(rejections),
    }
    dlq = names.dlq(delivery.stream)
    await bus.redis.xadd(bus.key(dlq), fields, maxlen=bus.maxlen_of(dlq) or None)
    for rejection in rejections:
        metrics.REJECTED.labels(_reason_label(rejection.reason)).inc()
    log.error("dead-lettered parts of webhook %s: %s", event.event_id, fields["dlq_error"])


def rejected_parts_id(webhook_id: uuid.UUID) -> uuid.UUID:
    """The event id of the dead letter of webhook `webhook_id`: the same for every repeat."""
    return uuid.uuid5(webhook_id, "rejected-parts")


def _reason_label(reason: str) -> str:
    if "WA_ALLOWED_PHONE_NUMBER_IDS" in reason:
        return "number_not_allowed"
    return "unparseable"
