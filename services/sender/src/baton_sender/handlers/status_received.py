"""`wa.statuses` StatusReceived: move a sent message's status forward, never back.

Webhooks arrive in any order and more than once: `read` may come without `delivered`, `sent`
after `delivered`. `status.advances` decides; a status that does not advance changes nothing
and emits nothing. The message is found by wamid, or by the `biz_opaque_callback_data` the
sender put in the request (`<command_id>#<part>`), so a status that overtakes the recording
of the send's answer still lands.
"""

from __future__ import annotations

import logging

from baton_sender.context import SenderContext
from baton_sender.db import repo
from baton_sender.results import outcome, result_event
from baton_sender.status import Status, advances
from baton_sender.whatsapp.errors import WINDOW_CLOSED_CODE
from baton_shared.db import add_to_outbox, claim_inbox
from baton_shared.events import DeliveryStatus, DeliveryStatusChanged, Event, StatusReceived
from baton_shared.streams.consumer import Delivery

log = logging.getLogger(__name__)
CONSUMER = "sender.statuses"


def callback_of(raw: dict[str, object]) -> tuple[str, int] | None:
    """The (command_id, part) the sender put in `biz_opaque_callback_data`, if any."""
    value = raw.get("biz_opaque_callback_data")
    if not isinstance(value, str) or "#" not in value:
        return None
    command_id, _, part = value.rpartition("#")
    return (command_id, int(part)) if part.isdigit() else None


async def handle(ctx: SenderContext, event: Event, delivery: Delivery) -> None:
    """Apply one delivery status monotonically and emit DeliveryStatusChanged if it moved."""
    if not isinstance(event, StatusReceived) or event.payload.status is DeliveryStatus.UNKNOWN:
        return
    update = event.payload
    new = Status(update.status.value)
    async with ctx.db.session() as session:
        if not await claim_inbox(session, CONSUMER, event.event_id):
            return
        row = await repo.find_sent(session, update.message_id, callback_of(update.raw))
        if row is None:
            log.info("status %s for unknown message %s", new, update.message_id)
            return
        if not advances(Status(row.status), new, reason=row.reason):
            return
        error = update.errors[0] if update.errors else None
        reason = None
        if new is Status.FAILED:
            reason = "window_closed" if error and error.code == WINDOW_CLOSED_CODE else "failed"
        await repo.set_fields(
            session,
            row.seq,
            status=new,
            status_at=update.timestamp,
            wa_message_id=row.wa_message_id or update.message_id,
            reason=reason,
            error=error.model_dump(mode="json") if error else row.error,
        )
        payload = outcome(
            row, wa_message_id=update.message_id, status=update.status, reason=reason, error=error
        )
        await add_to_outbox(session, result_event(DeliveryStatusChanged, row, payload))
