"""Invariant 6 (order per customer) and the crash windows of a send."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from baton_sender.context import SenderContext
from baton_sender.dispatch import record
from baton_sender.dispatch.worker import Dispatcher
from baton_sender.status import OUTCOME_UNKNOWN
from baton_shared.events import (
    DeliveryStatusChanged,
    MessageFailed,
    MessageRequested,
    MessageSent,
    StatusReceived,
    StatusUpdate,
)
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


async def test_messages_to_one_customer_leave_in_order_while_others_proceed(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    slow, fast = new_customer(), new_customer()
    for to in (slow, fast):
        await open_window(ctx, to)
    await emulator.fault(to=slow, delay_ms=3000, count=1)  # the first call to `slow` hangs
    await emulator.fault(to=slow, code=131000, count=1)  # ...and the next fails transiently
    for n in range(5):
        await bus.publish(command(slow, text=f"slow {n}"))
        await bus.publish(command(fast, text=f"fast {n}"))

    fast_bodies = await wait_until(lambda: _bodies(emulator, fast, 5))
    assert fast_bodies == [f"fast {n}" for n in range(5)]
    assert await emulator.messages(slow) == []  # fast was not held up behind slow
    slow_bodies = await wait_until(lambda: _bodies(emulator, slow, 5), timeout=20)
    assert slow_bodies == [f"slow {n}" for n in range(5)]


async def _bodies(emulator: Emulator, to: str, n: int) -> list[str] | None:
    bodies = [m["body"]["text"]["body"] for m in await emulator.messages(to)]
    return bodies if len(bodies) >= n else None


async def record_claimed(
    ctx: SenderContext, event: MessageRequested, lease: timedelta | None = None
) -> None:
    """Record `event`'s message as claimed (by a worker that will not finish), with a lease
    of `lease` from now, or none."""
    from baton_sender.db import repo
    from baton_sender.handlers.message_requested import message_rows as rows_of

    async with ctx.db.session() as session:
        await repo.add_messages(session, [r | {"status": "claimed"} for r in rows_of(event)])
        if lease is not None:
            await session.execute(
                text("UPDATE messages SET lease_until = now() + :lease WHERE command_id = :c"),
                {"lease": lease, "c": event.payload.command_id},
            )


async def expire_leases(ctx: SenderContext) -> None:
    async with ctx.db.session() as session:
        await session.execute(text("UPDATE messages SET lease_until = now() - interval '1 s'"))


async def test_crash_between_claim_and_send_sends_it_later(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    event = command(to, text="survives")
    # The state a killed process leaves after claiming: recorded and claimed, never called.
    await record_claimed(ctx, event)
    await expire_leases(ctx)
    ctx.work.set()
    (done,) = await wait_until(lambda: results(bus, event.payload.command_id), timeout=30)
    assert isinstance(done, MessageSent)
    assert [m["body"]["text"]["body"] for m in await emulator.messages(to)] == ["survives"]


async def test_crash_after_send_before_recording_is_not_sent_twice(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    event = command(to, text="maybe")
    from baton_sender.whatsapp.payloads import build_body

    await record_claimed(ctx, event)
    (row,) = await message_rows(ctx, event.payload.command_id)
    assert await record.begin_call(ctx, row.seq, 1, row.lease_until)
    # The call goes out; the process dies before recording the answer.
    wamid = await ctx.client.send(
        PHONE_NUMBER_ID, build_body(event.payload, f"{event.payload.command_id}#0")
    )
    await expire_leases(ctx)
    ctx.work.set()
    (failed,) = await wait_until(lambda: results(bus, event.payload.command_id), timeout=30)
    assert isinstance(failed, MessageFailed)
    assert failed.payload.reason == OUTCOME_UNKNOWN
    assert len(await emulator.messages(to)) == 1  # not sent twice

    # WhatsApp's status webhook (matched by callback data) proves it went out.
    status = StatusReceived.create(
        StatusUpdate(
            message_id=wamid or "",
            phone_number_id=PHONE_NUMBER_ID,
            status="delivered",
            timestamp=datetime.now(UTC),
            raw={"biz_opaque_callback_data": f"{event.payload.command_id}#0"},
        ),
        producer="test",
    )
    await bus.publish(status)
    events = await wait_until(lambda: _at_least(results(bus, event.payload.command_id), 2))
    assert isinstance(events[1], DeliveryStatusChanged)
    (row,) = await message_rows(ctx, event.payload.command_id)
    assert (row.status, row.wa_message_id) == ("delivered", wamid)


async def _at_least(values: object, n: int) -> list[object] | None:
    got = await values  # type: ignore[misc]
    return got if len(got) >= n else None  # type: ignore[arg-type]


async def test_two_dispatchers_never_send_one_customer_twice_at_once(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, delay_ms=100, count=4)
    other = Dispatcher(ctx)  # a second replica on the same database and Redis
    stop = asyncio.Event()
    task = asyncio.create_task(other.run(stop))
    try:
        events = [command(to, text=f"m{n}") for n in range(4)]
        for event in events:
            await bus.publish(event)
        bodies = await wait_until(lambda: _bodies(emulator, to, 4), timeout=20)
        assert bodies == [f"m{n}" for n in range(4)]
    finally:
        stop.set()
        await task


async def test_a_worker_that_stalled_past_its_claim_does_not_send_again(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    # A worker claimed the message, then stalled (a long GC pause, a slow database) past its
    # lease: recovery put the message back, another worker sent it. When the stalled worker
    # wakes, its claim is gone: it must neither call WhatsApp nor put the message back.
    to = new_customer()
    await open_window(ctx, to)
    event = command(to, text="once only")
    await record_claimed(ctx, event, lease=timedelta(hours=1))
    (stalled,) = await message_rows(ctx, event.payload.command_id)
    await expire_leases(ctx)
    ctx.work.set()
    (done,) = await wait_until(lambda: results(bus, event.payload.command_id), timeout=30)
    assert isinstance(done, MessageSent)

    assert not await record.begin_call(ctx, stalled.seq, 1, stalled.lease_until)
    await record.release(ctx, stalled.seq, 0)
    (row,) = await message_rows(ctx, event.payload.command_id)
    assert row.status == "sent"
    assert len(await emulator.messages(to)) == 1
