"""Background work after a send is answered: the media WhatsApp downloads, then the status
webhooks (sent, delivered, read, or failed)."""

from __future__ import annotations

import asyncio
from typing import Any

from baton_devtools.whatsapp.delivery import deliver
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
    state: WaState,
    record: MessageRecord,
    failure: GraphError | None = None,
    media: list[tuple[str, dict[str, Any]]] | None = None,
) -> None:
    """Fetch the send's media links, then post each planned status webhook in order; a
    refused post is redelivered in the background, a failed one logged, never raised."""
    config = state.config
    if failure is None and media:
        hosts, timeout = config.reachable_media_hosts, config.media_fetch_timeout_ms
        failure = await state.links.check(media, hosts, timeout)
    delay = config.status_delay_ms / 1000
    for status in status_plan(state, record, failure):
        await asyncio.sleep(delay)
        item = status_item(record, status, failure)
        payload = envelope(state.settings, record.phone_number_id, {"statuses": [item]})
        note: dict[str, Any] = {"status": status}
        await deliver(state, payload, note)
        record.statuses.append(note)
