"""Background delivery of status webhooks (sent, delivered, read, or failed) for a send."""

from __future__ import annotations

import asyncio

from baton_devtools.whatsapp.errors import GraphError
from baton_devtools.whatsapp.payloads import envelope, status_item
from baton_devtools.whatsapp.state import MessageRecord, WaState


def status_plan(state: WaState, record: MessageRecord, failure: GraphError | None) -> list[str]:
    """Statuses to deliver: the configured ones, only `sent` for reactions, `failed` on failure."""
    if failure is not None:
        return ["failed"]
    plan: list[str] = list(state.config.statuses)
    if record.type == "reaction":
        plan = [status for status in plan if status == "sent"]
    return plan


async def deliver_statuses(
    state: WaState, record: MessageRecord, failure: GraphError | None = None
) -> None:
    """Post each planned status webhook in order; a failed post is logged, never raised."""
    delay = state.config.status_delay_ms / 1000
    for status in status_plan(state, record, failure):
        await asyncio.sleep(delay)
        item = status_item(record, status, failure)
        payload = envelope(state.settings, record.phone_number_id, {"statuses": [item]})
        code = await state.webhook.post_logged(payload)
        record.statuses.append({"status": status, "webhook_status": code})
