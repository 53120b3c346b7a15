"""The walking skeleton: a command on wa.outbound reaches WhatsApp once and its result is told."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from baton_sender.context import SenderContext
from baton_shared.events import MessageSent
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import Emulator, command, inbound, message_rows, new_customer, open_window, results

pytestmark = pytest.mark.integration


async def test_command_is_sent_recorded_and_reported(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    event = command(to, text="Your order ships today")
    await bus.publish(event)

    sent = await wait_until(lambda: emulator.messages(to), what="emulator got the message")
    assert sent[0]["body"]["text"]["body"] == "Your order ships today"
    assert sent[0]["body"]["biz_opaque_callback_data"] == f"{event.payload.command_id}#0"

    reported = await wait_until(lambda: results(bus, event.payload.command_id))
    assert isinstance(reported[0], MessageSent)
    assert reported[0].payload.wa_message_id == sent[0]["id"]
    assert reported[0].causation_id == event.event_id
    assert reported[0].correlation_id == event.correlation_id
    rows = await message_rows(ctx, event.payload.command_id)
    assert [(r.status, r.wa_message_id, r.attempts) for r in rows] == [("sent", sent[0]["id"], 1)]


async def test_repeated_command_id_is_sent_once(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    first = command(to, text="once")
    again = command(to, text="once", command_id=first.payload.command_id)  # new event id
    await bus.publish(first)
    await bus.publish(again)
    await bus.publish(first, stream=None)  # same event again: the bus drops it
    marker = command(to, text="after")
    await bus.publish(marker)

    await wait_until(lambda: results(bus, marker.payload.command_id), what="marker handled")
    assert [m["body"]["text"]["body"] for m in await emulator.messages(to)] == ["once", "after"]
    assert len(await results(bus, first.payload.command_id)) == 1


async def test_inbound_message_opens_the_window(
    ctx: SenderContext, bus: Bus, emulator: Emulator, redis: Redis
) -> None:
    to = new_customer()
    await bus.publish(inbound(to))
    probe = command(to, text="reply")

    async def window_open() -> bool:
        from baton_sender.db import repo

        async with ctx.db.session() as session:
            return await repo.last_inbound(session, "420123456789012", to) is not None

    await wait_until(window_open, what="window recorded")
    await bus.publish(probe)
    reported = await wait_until(lambda: results(bus, probe.payload.command_id))
    assert isinstance(reported[0], MessageSent)
