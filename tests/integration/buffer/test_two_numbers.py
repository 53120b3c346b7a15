"""One customer writing to two business numbers of the business at once: two conversations
(`conversation_id_for(phone_number_id, wa_id)`), each with its own bursts, its own turns and
its own one-turn-in-flight rule (invariant 5 is per conversation, not per customer)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from baton_buffer.db.models import messages, turns
from baton_buffer.main import create_app
from baton_shared.db import Database
from baton_shared.events import MessageReceived, TurnReady
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import Conversation, Replica, agents_caught_up, new_conversation
from .test_service import settings as service_settings
from .test_service import stream_turns

pytestmark = pytest.mark.integration


def one_customer_on_two_numbers() -> tuple[Conversation, Conversation]:
    """The same customer (wa_id) on two business numbers of one business."""
    a = new_conversation()
    b = Conversation(f"pn{uuid.uuid4().hex[:10]}", a.wa_id)
    assert a.id != b.id
    return a, b


def say(conv: Conversation, text: str, *, ts: float = 0.0) -> MessageReceived:
    """A message whose text is also its label. WhatsApp message ids are unique across numbers,
    so the label (not a per-conversation counter) makes the id: `Conversation.message(1)` on
    both numbers would give one wamid and the second would be taken for a duplicate."""
    return conv.message(text, ts=ts, text=text)


async def only_turn(replica: Replica, conv: Conversation) -> TurnReady:
    [turn] = await replica.released(conv)
    return turn


async def test_interleaved_messages_to_two_numbers_make_one_turn_per_number(
    make_replica, clock
) -> None:
    a, b = one_customer_on_two_numbers()
    replica = make_replica(quiet=4, max_seconds=15)
    for t, (conv, text) in enumerate(((a, "a1"), (b, "b1"), (a, "a2"), (b, "b2"))):
        clock.at(t)
        await replica.on_message(say(conv, text, ts=t))
    assert (await replica.stored(a), await replica.stored(b)) == (2, 2)

    # Each number's burst has its own quiet timer: a's went quiet at t=2 (due at 6), b's at
    # t=3 (due at 7). One burst for the customer would close at 7 with all four messages.
    clock.at(6)
    await replica.ticker.tick()
    assert await replica.texts(a) == [["a1", "a2"]]
    assert await replica.texts(b) == []
    clock.at(7)
    await replica.ticker.tick()
    assert await replica.texts(b) == [["b1", "b2"]]

    for conv in (a, b):
        turn = await only_turn(replica, conv)
        assert turn.conversation_id == conv.id
        assert (turn.payload.phone_number_id, turn.payload.wa_id) == (conv.phone_number_id, a.wa_id)
        assert turn.payload.sequence == 1
        assert {m.phone_number_id for m in turn.payload.messages} == {conv.phone_number_id}
    turn_a, turn_b = await only_turn(replica, a), await only_turn(replica, b)
    assert turn_a.payload.turn_id != turn_b.payload.turn_id


async def test_a_turn_in_flight_on_one_number_neither_holds_back_nor_is_freed_by_the_other(
    make_replica, clock
) -> None:
    a, b = one_customer_on_two_numbers()
    replica = make_replica(quiet=0)  # every message is due at once: only in-flight gates
    await replica.on_message(say(a, "a1"))
    turn_a = await only_turn(replica, a)
    await replica.on_message(say(a, "a2"))  # waits for a's turn 1

    # a's turn in flight does not hold back the same customer on b.
    await replica.on_message(say(b, "b1"))
    turn_b = await only_turn(replica, b)
    await replica.on_message(say(b, "b2"))  # waits for b's turn 1
    await replica.ticker.tick()
    assert await replica.texts(a) == [["a1"]]
    assert await replica.texts(b) == [["b1"]]

    # Completing a's turn frees a only: b's turn 1 is still in flight, so a message to b
    # arriving now (its writer looks at b at once) still waits.
    await replica.on_completed(a.completed(turn_a))
    await replica.on_message(say(b, "b3"))
    await replica.ticker.tick()
    assert await replica.texts(a) == [["a1"], ["a2"]]
    assert await replica.texts(b) == [["b1"]]

    # And completing b's turn 1 frees b only: a's turn 2 is still in flight.
    await replica.on_completed(b.completed(turn_b))
    await replica.on_message(say(a, "a3"))
    await replica.ticker.tick()
    assert await replica.texts(b) == [["b1"], ["b2", "b3"]]
    assert await replica.texts(a) == [["a1"], ["a2"]]

    a_rows, b_rows = await replica.turn_rows(a), await replica.turn_rows(b)
    assert [(r["sequence"], r["outcome"]) for r in a_rows] == [(1, "answered"), (2, None)]
    assert [(r["sequence"], r["outcome"]) for r in b_rows] == [(1, "answered"), (2, None)]


async def test_the_stuck_turn_timeout_runs_per_number(make_replica, clock, bus) -> None:
    a, b = one_customer_on_two_numbers()
    replica = make_replica(quiet=0, stuck=120)
    await replica.on_message(say(a, "a1"))  # a's turn in flight since t=0
    clock.at(100)
    await replica.on_message(say(b, "b1", ts=100))  # b's since t=100
    clock.at(101)
    await replica.on_message(say(a, "a2", ts=101))
    await replica.on_message(say(b, "b2", ts=101))
    await agents_caught_up(bus)  # an agent took both turns and never answered

    # a's turn is over its time, b's (released 100 s later) is not: only a moves on.
    clock.at(120)
    await replica.ticker.tick()
    assert await replica.texts(a) == [["a1"], ["a2"]]
    assert await replica.texts(b) == [["b1"]]
    [a_first, _] = await replica.turn_rows(a)
    [b_first] = await replica.turn_rows(b)
    assert a_first["timed_out_at"] is not None
    assert b_first["timed_out_at"] is None

    await agents_caught_up(bus)
    clock.at(220)
    await replica.ticker.tick()
    assert await replica.texts(b) == [["b1"], ["b2"]]


async def test_running_buffer_keeps_two_numbers_of_one_customer_apart(
    database_url, redis_url, prefix, bus: Bus
) -> None:
    # Through `wa.inbound` and `conv.turns.done`, as the service runs: entries of both numbers
    # published back to back (likely read, and recorded, in one batch).
    a, b = one_customer_on_two_numbers()
    app = create_app(service_settings(database_url, redis_url, prefix))
    db = Database(database_url, "buffer", pool_size=1)

    async def turns_of(conv: Conversation, n: int) -> list[TurnReady] | None:
        found = [t for t in await stream_turns(bus) if t.conversation_id == conv.id]
        return found if len(found) >= n else None

    try:
        async with app.router.lifespan_context(app):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            async with client:
                await wait_until(lambda: _ready(client), what="ready")
                await bus.publish(say(a, "a1"))
                await bus.publish(say(b, "b1"))
                [first_a] = await wait_until(lambda: turns_of(a, 1), what="a's first turn")
                [first_b] = await wait_until(lambda: turns_of(b, 1), what="b's first turn")
                assert [m.text for m in first_a.payload.messages] == ["a1"]
                assert [m.text for m in first_b.payload.messages] == ["b1"]
                assert first_a.payload.phone_number_id == a.phone_number_id
                assert first_b.payload.phone_number_id == b.phone_number_id

                # Both numbers now have a turn in flight and a message waiting behind it; only
                # a's turn is reported done.
                waiting = [say(a, "a2"), say(b, "b2")]
                for event in waiting:
                    await bus.publish(event)
                await wait_until(lambda: _recorded(db, waiting), what="a2 and b2 recorded")
                await bus.publish(a.completed(first_a))
                [_, second_a] = await wait_until(lambda: turns_of(a, 2), what="a's second turn")
                assert [m.text for m in second_a.payload.messages] == ["a2"]
                late = say(b, "b3")  # b's turn 1 is still in flight: b3 joins b2
                await bus.publish(late)
                await wait_until(lambda: _recorded(db, [late]), what="b3 recorded")
                assert await turns_of(b, 2) is None

                await bus.publish(b.completed(first_b))
                [_, second_b] = await wait_until(lambda: turns_of(b, 2), what="b's second turn")
                assert [m.text for m in second_b.payload.messages] == ["b2", "b3"]
        assert await turns_of(a, 3) is None
        first_row, second_row = await _turn_rows(db, b)
        assert first_row.outcome == "answered"
        assert second_row.released_at >= first_row.completed_at  # not freed by a's turn
    finally:
        await db.dispose()


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/health/ready")).status_code == 200


async def _recorded(db: Database, events: list[MessageReceived]) -> bool:
    """Whether the buffer has recorded these messages."""
    async with db.sessions() as session:
        found = await session.scalar(
            select(func.count()).where(
                messages.c.message_id.in_([e.payload.message_id for e in events])
            )
        )
    return found == len(events)


async def _turn_rows(db: Database, conv: Conversation) -> list[Any]:
    """The buffer's turns of `conv`, by sequence."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(turns).where(turns.c.conversation_id == conv.id).order_by(turns.c.sequence)
        )
        return list(rows)
