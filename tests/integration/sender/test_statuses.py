"""Invariant 7: delivery status only moves forward, whatever order the webhooks come in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from baton_sender.context import SenderContext
from baton_shared.events import (
    DeliveryStatus,
    DeliveryStatusChanged,
    MessageSent,
    PlatformError,
    StatusReceived,
    StatusUpdate,
)
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import (
    PHONE_NUMBER_ID,
    command,
    handled,
    message_rows,
    new_customer,
    open_window,
    results,
)

pytestmark = pytest.mark.integration


def status(
    wamid: str, value: str, *, raw: dict[str, Any] | None = None, code: int | None = None
) -> StatusReceived:
    payload = StatusUpdate(
        message_id=wamid,
        phone_number_id=PHONE_NUMBER_ID,
        status=value,
        timestamp=datetime.now(UTC),
        errors=[PlatformError(code=code)] if code else [],
        raw=raw or {},
    )
    return StatusReceived.create(payload, producer="test")


async def sent_message(ctx: SenderContext, bus: Bus) -> tuple[str, str]:
    """Send one message; returns (command_id, wamid)."""
    to = new_customer()
    await open_window(ctx, to)
    event = command(to)
    await bus.publish(event)
    done = await wait_until(lambda: results(bus, event.payload.command_id))
    assert isinstance(done[0], MessageSent)
    assert done[0].payload.wa_message_id
    return event.payload.command_id, done[0].payload.wa_message_id


async def changes(bus: Bus, command_id: str) -> list[str]:
    return [
        str(e.payload.status)
        for e in await results(bus, command_id)
        if isinstance(e, DeliveryStatusChanged)
    ]


async def test_out_of_order_statuses_only_move_forward(ctx: SenderContext, bus: Bus) -> None:
    command_id, wamid = await sent_message(ctx, bus)
    # read without delivered, then a late delivered and sent, a duplicate read, and a failed.
    for value in ("read", "delivered", "sent", "read", "failed"):
        await bus.publish(status(wamid, value))
    end = status(wamid, "read")  # handled after all the above (one consumer, in order)
    await bus.publish(end)
    await wait_until(lambda: handled(ctx, end), what="last status handled")
    assert await wait_until(lambda: changes(bus, command_id)) == [DeliveryStatus.READ]
    rows = await message_rows(ctx, command_id)
    assert rows[0].status == "read"


async def test_delivered_then_read_then_failed_webhook(ctx: SenderContext, bus: Bus) -> None:
    command_id, wamid = await sent_message(ctx, bus)
    await bus.publish(status(wamid, "delivered"))
    await wait_until(lambda: changes(bus, command_id))
    await bus.publish(status(wamid, "read"))
    assert await wait_until(lambda: _when_len(changes(bus, command_id), 2)) == ["delivered", "read"]


async def test_failed_status_is_final_and_names_window_closed(ctx: SenderContext, bus: Bus) -> None:
    command_id, wamid = await sent_message(ctx, bus)
    await bus.publish(status(wamid, "failed", code=131047))
    events = await wait_until(lambda: changes(bus, command_id))
    assert events == ["failed"]
    late = status(wamid, "delivered")
    await bus.publish(late)
    await wait_until(lambda: handled(ctx, late), what="late status handled")
    assert await changes(bus, command_id) == ["failed"]
    rows = await message_rows(ctx, command_id)
    assert (rows[0].status, rows[0].reason) == ("failed", "window_closed")
    assert rows[0].error["code"] == 131047


async def _when_len(values: Any, n: int) -> list[str] | None:
    got = list(await values)
    return got if len(got) >= n else None


async def test_a_voice_note_played_after_read(ctx: SenderContext, bus: Bus) -> None:
    command_id, wamid = await sent_message(ctx, bus)
    for value in ("read", "played", "read", "failed"):  # a late read and failed change nothing
        await bus.publish(status(wamid, value))
    end = status(wamid, "delivered")
    await bus.publish(end)
    await wait_until(lambda: handled(ctx, end), what="last status handled")
    assert await wait_until(lambda: _when_len(changes(bus, command_id), 2)) == ["read", "played"]
    rows = await message_rows(ctx, command_id)
    assert rows[0].status == "played"
