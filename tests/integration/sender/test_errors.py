"""WhatsApp's errors: transient ones are retried, permanent ones fail clearly, token errors pause."""

from __future__ import annotations

import uuid

import pytest

from baton_sender import keys, metrics
from baton_sender.context import SenderContext
from baton_shared.events import Author, MessageFailed, MessageSent, OutboundKind
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import Emulator, command, message_rows, new_customer, open_window, results

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("code", [131000, 130429, 131016, 133004])
async def test_transient_errors_are_retried_until_sent(
    ctx: SenderContext, bus: Bus, emulator: Emulator, code: int
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, code=code, count=2)
    event = command(to, text="persist")
    await bus.publish(event)

    (done,) = await wait_until(lambda: results(bus, event.payload.command_id))
    assert isinstance(done, MessageSent)
    assert done.payload.details["attempts"] == 3
    assert len(await emulator.messages(to)) == 1


async def test_a_throughput_error_pauses_the_whole_number(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, code=130429, count=1)
    before = metrics.NUMBER_PAUSES._value.get()
    event = command(to, text="after the pause")
    await bus.publish(event)

    (done,) = await wait_until(lambda: results(bus, event.payload.command_id))
    assert isinstance(done, MessageSent)
    assert metrics.NUMBER_PAUSES._value.get() == before + 1


async def test_transient_errors_give_up_after_max_attempts(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, code=131016, count=50)
    event = command(to)
    await bus.publish(event)
    (done,) = await wait_until(lambda: results(bus, event.payload.command_id), timeout=20)
    assert isinstance(done, MessageFailed)
    assert done.payload.reason == "retries_exhausted"
    assert done.payload.error is not None
    assert done.payload.error.code == 131016
    assert done.payload.details["attempts"] == ctx.settings.max_attempts


@pytest.mark.parametrize("code", [131026, 131051, 132001])
async def test_permanent_errors_fail_at_once_with_code_and_details(
    ctx: SenderContext, bus: Bus, emulator: Emulator, code: int
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, code=code)
    event = command(to)
    await bus.publish(event)
    (done,) = await wait_until(lambda: results(bus, event.payload.command_id))
    assert isinstance(done, MessageFailed)
    assert done.payload.reason == "rejected"
    assert done.payload.error is not None
    assert done.payload.error.code == code
    assert done.payload.error.details
    assert done.payload.details["attempts"] == 1


async def test_synchronous_window_error_is_reported_as_window_closed(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)  # we think it is open; WhatsApp disagrees
    await emulator.fault(to=to, code=131047)
    event = command(to)
    await bus.publish(event)
    (done,) = await wait_until(lambda: results(bus, event.payload.command_id))
    assert isinstance(done, MessageFailed)
    assert done.payload.reason == "window_closed"


async def test_token_error_raises_alert_and_pauses_sending(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    before = metrics.TOKEN_ERRORS._value.get()
    await emulator.fault(to=to, code=190, count=1)
    first = command(to, text="first")
    second = command(to, text="second")
    await bus.publish(first)
    await bus.publish(second)

    async def paused() -> bool:
        return bool(await bus.redis.exists(bus.key(keys.auth_pause())))

    await wait_until(paused, what="sending paused")
    await wait_until(lambda: message_rows(ctx, second.payload.command_id))
    assert metrics.TOKEN_ERRORS._value.get() == before + 1
    rows = await message_rows(ctx, first.payload.command_id)
    assert (rows[0].status, rows[0].attempts) == ("queued", 0)  # kept, not failed
    assert await results(bus) == []
    assert await emulator.messages(to) == []

    await bus.redis.delete(bus.key(keys.auth_pause()))  # the token was fixed
    async with ctx.db.session() as session:  # and the operator does not want to wait
        from sqlalchemy import text

        await session.execute(text("UPDATE messages SET not_before = NULL"))
    ctx.work.set()
    await wait_until(lambda: results(bus, second.payload.command_id), timeout=15)
    assert [m["body"]["text"]["body"] for m in await emulator.messages(to)] == ["first", "second"]


async def test_a_failing_typing_indicator_does_not_hold_the_answer_back(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    # The typing indicator heads the customer's queue; the answer waits behind it. A failing
    # indicator gets one retry, not the full budget of backoffs.
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(type="read", code=131000, count=2)  # read calls carry no `to`
    typing = command(
        to, kind=OutboundKind.TYPING, author=Author.AI, text=None, reply_to="wamid.in.t1"
    )
    answer = command(to, author=Author.AI, text="the answer")
    await bus.publish(typing)
    await bus.publish(answer)

    (sent,) = await wait_until(lambda: results(bus, answer.payload.command_id), timeout=15)
    assert isinstance(sent, MessageSent)
    (gave_up,) = await results(bus, typing.payload.command_id)
    assert isinstance(gave_up, MessageFailed)
    assert gave_up.payload.details["attempts"] == 2


async def test_a_long_text_whose_first_part_fails_is_not_sent_with_a_hole(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, code=131026, count=1)  # the first part is refused for good
    event = command(to, text="Sentence number one. " * 500)  # ~10,500 characters: 3 parts
    await bus.publish(event)

    async def all_parts() -> list[object] | None:
        found = await results(bus, event.payload.command_id)
        return found if len(found) == 3 else None

    found = await wait_until(all_parts, timeout=15)
    assert all(isinstance(e, MessageFailed) for e in found)
    assert sorted(e.payload.reason for e in found) == [
        "earlier_part_failed",
        "earlier_part_failed",
        "rejected",
    ]
    assert await emulator.messages(to) == []


async def test_a_customer_known_only_by_username_gets_the_answer(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    # A customer who arrived by username has a business-scoped user id and no phone number:
    # the message is addressed with `recipient`, not `to` (which WhatsApp refuses, code 100).
    bsuid = f"US.{uuid.uuid4().int % 10**20:020d}"
    await open_window(ctx, bsuid)
    event = command(bsuid, author=Author.AI, text="Hello, username customer")
    await bus.publish(event)

    (done,) = await wait_until(lambda: results(bus, event.payload.command_id))
    assert isinstance(done, MessageSent)
    [sent] = await emulator.messages(bsuid)
    assert sent["body"]["recipient"] == bsuid
    assert "to" not in sent["body"]
