"""One customer messaged from two business numbers of the business: two conversations. Order
(invariant 6), holding back (retries, pair pacing, the window's grace), the 24-hour window
and fencing all run per (business number, customer), never per customer alone."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from baton_sender.context import SenderContext
from baton_sender.db import repo
from baton_sender.main import create_app
from baton_sender.settings import SenderSettings
from baton_shared.events import (
    Author,
    InboundMessage,
    MessageFailed,
    MessageReceived,
    MessageRequested,
    MessageSent,
    MessageSuppressed,
    MessageType,
    OutboundCommand,
    OutboundKind,
    conversation_id_for,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, Emulator, clean_schema, message_rows, new_customer, results

pytestmark = pytest.mark.integration

A = PHONE_NUMBER_ID
B = "420987654321098"  # a second business number of the same business
# An approved template as WhatsApp (the emulator) knows it: order number and status.
TEMPLATE = {
    "name": "order_update",
    "language": {"code": "en_US"},
    "components": [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "A-1042"}, {"type": "text", "text": "shipped"}],
        }
    ],
}


def send(number: str, to: str, body: str | None, **fields: Any) -> MessageRequested:
    """A command to send `body` to `to` from business number `number` (an operator's, unless
    `author` says otherwise)."""
    fields.setdefault("author", Author.OPERATOR)
    fields.setdefault("kind", OutboundKind.TEXT)
    payload = OutboundCommand(
        command_id=str(uuid.uuid4()),
        phone_number_id=number,
        to=to,
        text=body,
        **fields,
    )
    return MessageRequested.create(payload, producer="test")


def wrote_to(number: str, customer: str) -> MessageReceived:
    """The customer's message to business number `number` (on `wa.inbound`)."""
    payload = InboundMessage(
        message_id=f"wamid.in.{uuid.uuid4().hex}",
        phone_number_id=number,
        wa_id=customer,
        timestamp=datetime.now(UTC),
        type=MessageType.TEXT,
        text="hi",
    )
    return MessageReceived.create(
        payload, producer="test", conversation_id=conversation_id_for(number, customer)
    )


async def open_windows(ctx: SenderContext, to: str, *numbers: str) -> None:
    """Record that `to` just wrote to each of these business numbers."""
    async with ctx.db.session() as session:
        for number in numbers:
            await repo.touch_window(session, number, to, datetime.now(UTC))


async def last_inbound(ctx: SenderContext, number: str, to: str) -> datetime | None:
    async with ctx.db.session() as session:
        return await repo.last_inbound(session, number, to)


async def bodies(emulator: Emulator, number: str, to: str) -> list[str]:
    """The texts the emulator accepted from business number `number` to `to`, oldest first."""
    response = await emulator.http.get(
        "/_emulator/messages", params={"to": to, "phone_number_id": number}
    )
    return [m["body"]["text"]["body"] for m in response.json() if m["type"] == "text"]


async def at_least(emulator: Emulator, number: str, to: str, n: int) -> list[str] | None:
    found = await bodies(emulator, number, to)
    return found if len(found) >= n else None


async def row(ctx: SenderContext, event: MessageRequested) -> Any:
    (found,) = await message_rows(ctx, event.payload.command_id)
    return found


@asynccontextmanager
async def sender(settings: SenderSettings, **overrides: Any) -> AsyncIterator[SenderContext]:
    """A running sender (consumers, dispatcher, relay) with some settings of its own, on a
    clean schema."""
    await clean_schema(settings.database_url)
    application = create_app(settings.model_copy(update=overrides))
    async with application.router.lifespan_context(application):
        context = application.state.sender
        assert isinstance(context, SenderContext)
        yield context


async def test_order_is_kept_per_number_and_customer(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_windows(ctx, to, A, B)
    events = [send(number, to, f"{number} {n}") for n in range(5) for number in (A, B)]
    for event in events:
        await bus.publish(event)

    from_a = await wait_until(lambda: at_least(emulator, A, to, 5), timeout=20)
    from_b = await wait_until(lambda: at_least(emulator, B, to, 5), timeout=20)
    assert from_a == [f"{A} {n}" for n in range(5)]
    assert from_b == [f"{B} {n}" for n in range(5)]
    assert len(await emulator.messages(to)) == 10  # each sent once, from its own number
    for event in events:
        recorded = await row(ctx, event)
        number = event.payload.phone_number_id
        assert (recorded.phone_number_id, recorded.status) == (number, "sent")
        assert recorded.conversation_id == conversation_id_for(number, to)


async def test_a_message_retrying_on_one_number_does_not_hold_back_the_other(
    settings: SenderSettings, bus: Bus, emulator: Emulator
) -> None:
    # A backoff far longer than the test: a's first message stays in its retry until the
    # test lets it run out, whatever this machine's speed.
    async with sender(settings, retry_base_seconds=60, retry_max_seconds=60) as ctx:
        to = new_customer()
        await open_windows(ctx, to, A, B)
        # The emulator's faults match the recipient, not the number: a0 goes alone, so the
        # transient failure is a's.
        await emulator.fault(to=to, code=131000, count=1)
        a0 = send(A, to, "a0")
        await bus.publish(a0)

        async def retrying() -> bool:
            found = await message_rows(ctx, a0.payload.command_id)
            return bool(found) and (found[0].status, found[0].attempts) == ("queued", 1)

        await wait_until(retrying, what="a0 failed once and waits for its retry")
        later = [send(A, to, "a1"), send(B, to, "b0"), send(A, to, "a2"), send(B, to, "b1")]
        for event in later:
            await bus.publish(event)

        assert await wait_until(lambda: at_least(emulator, B, to, 2)) == ["b0", "b1"]
        assert await bodies(emulator, A, to) == []  # a1 and a2 wait behind a0...
        for event in later:
            if event.payload.phone_number_id == A:
                assert (await row(ctx, event)).status == "queued"

        # ...until a0's backoff runs out: then a's messages leave, in order.
        async with ctx.db.session() as session:
            await session.execute(
                text("UPDATE messages SET not_before = now() WHERE command_id = :c"),
                {"c": a0.payload.command_id},
            )
        ctx.work.set()
        assert await wait_until(lambda: at_least(emulator, A, to, 3)) == ["a0", "a1", "a2"]
        sent = await row(ctx, a0)
        assert (sent.status, sent.attempts) == ("sent", 2)


async def test_pacing_one_number_does_not_pace_the_other(
    settings: SenderSettings, bus: Bus, emulator: Emulator
) -> None:
    # Two messages in a burst, then one a minute, per (business number, customer).
    async with sender(settings, customer_burst=2, customer_rate_per_minute=1) as ctx:
        to = new_customer()
        await open_windows(ctx, to, A, B)
        from_a = [send(A, to, f"a{n}") for n in range(3)]
        from_b = [send(B, to, f"b{n}") for n in range(2)]
        for event in [*from_a, *from_b]:
            await bus.publish(event)

        # b's messages come after a's third, which a's pair rate holds back for a minute;
        # b has its own pair rate, so both of b's go at once.
        assert await wait_until(lambda: at_least(emulator, B, to, 2)) == ["b0", "b1"]
        assert await wait_until(lambda: at_least(emulator, A, to, 2)) == ["a0", "a1"]

        async def paced() -> bool:  # claimed, refused a permit, put back for its slot
            found = await row(ctx, from_a[2])
            due = found.not_before
            return found.status == "queued" and due is not None and due > datetime.now(UTC)

        await wait_until(paced, what="a2 waits for a's pair rate")
        assert await bodies(emulator, A, to) == ["a0", "a1"]


async def test_writing_to_one_number_opens_the_window_of_that_number_only(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await bus.publish(wrote_to(A, to))  # through `wa.inbound`, as ingress publishes it
    await wait_until(lambda: last_inbound(ctx, A, to), what="a's window opened")
    assert await last_inbound(ctx, B, to) is None

    free_a = send(A, to, "from a")
    free_b = send(B, to, "from b")
    template_b = send(B, to, None, kind=OutboundKind.TEMPLATE, template=TEMPLATE)
    for event in (free_a, free_b, template_b):
        await bus.publish(event)

    (sent_a,) = await wait_until(lambda: results(bus, free_a.payload.command_id))
    assert isinstance(sent_a, MessageSent)
    (failed_b,) = await wait_until(lambda: results(bus, free_b.payload.command_id))
    assert isinstance(failed_b, MessageFailed)
    assert failed_b.payload.reason == "window_closed"
    assert failed_b.payload.details["last_inbound_at"] is None  # a's window is not b's
    (sent_template,) = await wait_until(lambda: results(bus, template_b.payload.command_id))
    assert isinstance(sent_template, MessageSent)  # templates need no window
    assert await bodies(emulator, A, to) == ["from a"]
    sent_from_b = (
        await emulator.http.get("/_emulator/messages", params={"to": to, "phone_number_id": B})
    ).json()
    assert [m["type"] for m in sent_from_b] == ["template"]


async def test_a_message_waiting_for_its_window_holds_back_only_its_number(
    settings: SenderSettings, bus: Bus, emulator: Emulator
) -> None:
    # The customer wrote to b; a's answer is produced before the sender has seen the message
    # to a that will open a's window. Within the grace a's messages wait for it; b's do not,
    # and b's open window does not let a's go.
    async with sender(settings, window_grace_seconds=60) as ctx:
        to = new_customer()
        await open_windows(ctx, to, B)
        from_a = [send(A, to, "a0"), send(A, to, "a1")]
        from_b = [send(B, to, "b0"), send(B, to, "b1")]
        for event in (from_a[0], from_b[0], from_a[1], from_b[1]):
            await bus.publish(event)

        assert await wait_until(lambda: at_least(emulator, B, to, 2)) == ["b0", "b1"]
        assert await bodies(emulator, A, to) == []
        for event in from_a:
            assert (await row(ctx, event)).status in ("queued", "claimed")
            assert await results(bus, event.payload.command_id) == []

        await bus.publish(wrote_to(A, to))  # the message that opens a's window arrives
        assert await wait_until(lambda: at_least(emulator, A, to, 2)) == ["a0", "a1"]


async def test_a_takeover_on_one_number_fences_only_that_number(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_windows(ctx, to, A, B)
    # An operator took the customer over on a (what the operator-api writes before its 200).
    key = bus.key(names.control_state(conversation_id_for(A, to)))
    await bus.redis.hset(key, mapping={"mode": "operator", "epoch": "1", "operator": "ana"})
    ai_a = send(A, to, "ai on a", author=Author.AI, control_epoch=0)
    ai_b = send(B, to, "ai on b", author=Author.AI, control_epoch=0)
    await bus.publish(ai_a)
    await bus.publish(ai_b)

    (suppressed,) = await wait_until(lambda: results(bus, ai_a.payload.command_id))
    assert isinstance(suppressed, MessageSuppressed)
    (sent,) = await wait_until(lambda: results(bus, ai_b.payload.command_id))
    assert isinstance(sent, MessageSent)
    assert await bodies(emulator, B, to) == ["ai on b"]
    assert await bodies(emulator, A, to) == []
