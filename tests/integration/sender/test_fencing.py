"""Invariant 4: after a takeover, no AI-authored message reaches the customer until handback."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from baton_sender.context import SenderContext
from baton_shared.events import (
    Author,
    MessageSent,
    MessageSuppressed,
    OutboundKind,
    conversation_id_for,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import (
    PHONE_NUMBER_ID,
    Emulator,
    command,
    message_rows,
    new_customer,
    open_window,
    results,
)

pytestmark = pytest.mark.integration


async def take_over(bus: Bus, to: str, epoch: int, mode: str = "operator") -> None:
    """What the operator-api writes before a takeover returns 200."""
    key = bus.key(names.control_state(conversation_id_for(PHONE_NUMBER_ID, to)))
    await bus.redis.hset(key, mapping={"mode": mode, "epoch": str(epoch), "operator": "ana"})


async def test_ai_message_after_takeover_is_suppressed(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await take_over(bus, to, epoch=2)
    ai = command(to, author=Author.AI, control_epoch=1, text="AI answer")
    operator = command(to, author=Author.OPERATOR, text="Operator here")
    await bus.publish(ai)
    await bus.publish(operator)

    await wait_until(lambda: results(bus, operator.payload.command_id))
    (event,) = await results(bus, ai.payload.command_id)
    assert isinstance(event, MessageSuppressed)
    assert event.payload.reason == "fenced"
    assert event.payload.details["mode"] == "operator"
    assert [m["body"]["text"]["body"] for m in await emulator.messages(to)] == ["Operator here"]
    rows = await message_rows(ctx, ai.payload.command_id)
    assert rows[0].status == "suppressed"


async def test_the_ais_typing_indicator_after_takeover_is_suppressed_too(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    # The agent shows "typing" before its model call; a takeover during that call must not
    # leave the customer watching the AI type while a person holds the conversation.
    to = new_customer()
    await open_window(ctx, to)
    await take_over(bus, to, epoch=2)
    typing = command(
        to,
        kind=OutboundKind.TYPING,
        author=Author.AI,
        text=None,
        reply_to="wamid.in.fenced-typing",
        control_epoch=1,
    )
    await bus.publish(typing)

    [event] = await wait_until(lambda: results(bus, typing.payload.command_id))
    assert isinstance(event, MessageSuppressed)
    assert event.payload.reason == "fenced"
    reads = (await emulator.http.get("/_emulator/reads")).json()
    assert [r for r in reads if r["id"] == "wamid.in.fenced-typing"] == []


async def test_ai_message_with_stale_epoch_is_suppressed_after_handback(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await take_over(bus, to, epoch=3, mode="ai")  # handed back: AI again, but a newer epoch
    stale = command(to, author=Author.AI, control_epoch=1, text="stale")
    fresh = command(to, author=Author.AI, control_epoch=3, text="fresh")
    await bus.publish(stale)
    await bus.publish(fresh)
    done = await wait_until(lambda: results(bus, fresh.payload.command_id))
    assert isinstance(done[0], MessageSent)
    assert isinstance((await results(bus, stale.payload.command_id))[0], MessageSuppressed)
    assert [m["body"]["text"]["body"] for m in await emulator.messages(to)] == ["fresh"]


async def test_takeover_landing_while_ai_messages_are_queued(
    ctx: SenderContext, bus: Bus, emulator: Emulator, redis: Redis
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, delay_ms=400, count=1)  # the first call hangs a little
    queued = [command(to, author=Author.AI, control_epoch=0, text=f"part {n}") for n in range(3)]
    for event in queued:
        await bus.publish(event)

    async def first_call_in_flight() -> bool:
        response = await emulator.http.get("/_emulator/faults")
        return not [f for f in response.json()["faults"] if f.get("to") == to]

    await wait_until(first_call_in_flight, what="first call reached WhatsApp")
    await take_over(bus, to, epoch=1)  # the takeover returns 200 now
    last = queued[-1].payload.command_id
    await wait_until(lambda: results(bus, last), what="last AI message resolved")

    outcomes = [type((await results(bus, e.payload.command_id))[0]) for e in queued]
    assert outcomes == [MessageSent, MessageSuppressed, MessageSuppressed]
    assert [m["body"]["text"]["body"] for m in await emulator.messages(to)] == ["part 0"]


@pytest.mark.parametrize(
    ("mode", "epoch", "sent"),
    [
        ("pending_human", 2, True),  # the handoff itself (epoch + 1): the notice goes out
        ("ai", 1, True),  # the handoff not yet written: nothing happened since the turn
        ("operator", 2, False),  # taken over while the model wrote the notice
        ("operator", 3, False),  # taken over after the handoff
        ("ai", 3, False),  # taken over and handed back: the AI's notice is stale
        ("resolved", 3, False),
    ],
)
async def test_a_handoff_notice_passes_only_its_own_handoff(
    ctx: SenderContext, bus: Bus, emulator: Emulator, mode: str, epoch: int, sent: bool
) -> None:
    # A turn at epoch 1 hands off and tells the customer a person is coming (a system
    # message). A takeover that returned 200 while the model wrote it must fence it too.
    to = new_customer()
    await open_window(ctx, to)
    await take_over(bus, to, epoch=epoch, mode=mode)
    notice = command(to, author=Author.SYSTEM, control_epoch=1, text="A person will help you.")
    await bus.publish(notice)

    [event] = await wait_until(lambda: results(bus, notice.payload.command_id))
    assert isinstance(event, MessageSent if sent else MessageSuppressed)
    bodies = [m["body"]["text"]["body"] for m in await emulator.messages(to)]
    assert bodies == (["A person will help you."] if sent else [])


async def test_a_system_message_without_an_epoch_is_not_fenced(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await take_over(bus, to, epoch=4)
    notice = command(to, author=Author.SYSTEM, text="Your ticket was closed.")
    await bus.publish(notice)
    [event] = await wait_until(lambda: results(bus, notice.payload.command_id))
    assert isinstance(event, MessageSent)


async def test_an_ai_message_waits_while_its_fence_is_lost(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    # The message was produced under epoch 2, which only the operator-api gives out, yet
    # Redis has no control hash (flushed, or restored without it): a person may hold the
    # conversation. The message waits for the operator-api's resync instead of going out.
    to = new_customer()
    await open_window(ctx, to)
    ai = command(to, author=Author.AI, control_epoch=2, text="after the handback")
    await bus.publish(ai)

    async def waiting() -> bool:
        rows = await message_rows(ctx, ai.payload.command_id)
        return bool(rows) and rows[0].status == "queued" and rows[0].not_before is not None

    await wait_until(waiting, what="held back")
    assert await results(bus, ai.payload.command_id) == []
    await take_over(bus, to, epoch=2, mode="ai")  # the resync writes the hash: handed back
    [event] = await wait_until(lambda: results(bus, ai.payload.command_id), timeout=15)
    assert isinstance(event, MessageSent)
    assert [m["body"]["text"]["body"] for m in await emulator.messages(to)] == [
        "after the handback"
    ]
