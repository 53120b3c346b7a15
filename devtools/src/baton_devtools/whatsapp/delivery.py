"""Webhook delivery as Meta does it: anything but a 200 (or no answer) is delivered again
after each wait of `webhook_retry_ms`, in the background, until a 200 or the schedule ends
(reference 4: "retried at once, then with decreasing frequency"). A redelivery does not
hold back the webhooks after it, so a refused `sent` may arrive after `delivered`, as it
can from Meta."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from baton_devtools.whatsapp.state import WaState

OK = 200


def redeliver_later(state: WaState, payload: Mapping[str, Any], note: dict[str, Any]) -> bool:
    """Schedule the redeliveries of a refused webhook; False when the schedule is empty.

    `note["webhook_status"]` and `note["attempts"]` follow each attempt."""
    delays = list(state.config.webhook_retry_ms)
    if not delays:
        return False
    state.spawn(_redeliver(state, payload, note, delays))
    return True


async def deliver(state: WaState, payload: Mapping[str, Any], note: dict[str, Any]) -> None:
    """Post once now; on anything but 200, redeliver in the background."""
    code = await state.webhook.post_logged(payload)
    note["webhook_status"] = code
    note["attempts"] = 1
    if code != OK:
        redeliver_later(state, payload, note)


async def _redeliver(
    state: WaState, payload: Mapping[str, Any], note: dict[str, Any], delays: list[int]
) -> None:
    for delay in delays:
        await asyncio.sleep(delay / 1000)
        code = await state.webhook.post_logged(payload)
        note["webhook_status"] = code
        note["attempts"] = int(note.get("attempts", 1)) + 1
        if code == OK:
            return
