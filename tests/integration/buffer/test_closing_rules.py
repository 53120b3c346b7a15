"""Each closing rule, on real PostgreSQL and Redis, with a hand-moved clock."""

from __future__ import annotations

import pytest

from baton_buffer.handlers import message_received
from baton_shared.events import (
    InboundMedia,
    MessageReceived,
    MessageType,
    TurnCloseReason,
)
from baton_shared.streams.consumer import Delivery

pytestmark = pytest.mark.integration


async def test_quiet_closes_a_burst(make_replica, conv, clock) -> None:
    replica = make_replica(quiet=4, max_seconds=15)
    for n, t in enumerate((0, 1, 2)):
        clock.at(t)
        await replica.on_message(conv.message(n, ts=t))
    clock.at(5.9)
    await replica.ticker.tick()
    assert await replica.released(conv) == []
    clock.at(6)
    await replica.ticker.tick()
    [turn] = await replica.released(conv)
    assert turn.payload.closed_by == TurnCloseReason.QUIET
    assert [m.text for m in turn.payload.messages] == ["m0", "m1", "m2"]
    assert turn.payload.sequence == 1
    assert turn.conversation_id == conv.id
    assert (turn.payload.phone_number_id, turn.payload.wa_id) == (conv.phone_number_id, conv.wa_id)


async def test_max_time_closes_a_busy_burst(make_replica, conv, clock) -> None:
    replica = make_replica(quiet=4, max_seconds=10)
    for n, t in enumerate((0, 3, 6, 9)):
        clock.at(t)
        await replica.on_message(conv.message(n, ts=t))
        await replica.ticker.tick()
    clock.at(9.99)
    await replica.ticker.tick()
    assert await replica.released(conv) == []
    clock.at(10)
    await replica.ticker.tick()
    clock.at(11)
    await replica.on_message(conv.message(4, ts=11))
    await replica.ticker.tick()
    [turn] = await replica.released(conv)
    assert turn.payload.closed_by == TurnCloseReason.MAX_TIME
    assert [m.text for m in turn.payload.messages] == ["m0", "m1", "m2", "m3"]


async def test_max_messages_closes_a_burst_and_caps_the_turn(make_replica, conv, clock) -> None:
    replica = make_replica(quiet=4, max_seconds=15, max_messages=3)
    for n in range(5):
        await replica.on_message(conv.message(n, ts=n))
    await replica.ticker.tick()
    [first] = await replica.released(conv)
    assert first.payload.closed_by == TurnCloseReason.MAX_MESSAGES
    assert [m.text for m in first.payload.messages] == ["m0", "m1", "m2"]
    await replica.on_completed(conv.completed(first))
    await replica.ticker.tick()
    assert len(await replica.released(conv)) == 1  # the two left wait for quiet
    clock.at(4)
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m0", "m1", "m2"], ["m3", "m4"]]
    assert [t["closed_by"] for t in await replica.turn_rows(conv)] == ["max_messages", "quiet"]


@pytest.mark.parametrize(
    ("settings", "closed_by"),
    [
        ({"quiet": 0}, TurnCloseReason.QUIET),
        ({"max_seconds": 0}, TurnCloseReason.MAX_TIME),
        ({"max_messages": 0}, TurnCloseReason.MAX_MESSAGES),
    ],
)
async def test_zero_means_no_waiting(make_replica, conv, clock, settings, closed_by) -> None:
    replica = make_replica(**settings)
    await replica.on_message(conv.message(1))
    await replica.ticker.tick()
    [turn] = await replica.released(conv)
    assert turn.payload.closed_by == closed_by
    assert [m.text for m in turn.payload.messages] == ["m1"]


async def test_messages_are_ordered_by_timestamp_then_arrival(make_replica, conv, clock) -> None:
    replica = make_replica(quiet=4)
    # arrival order: c (ts 3), a (ts 1), b1 (ts 2), b2 (ts 2), z (ts 0)
    for name, ts in (("c", 3), ("a", 1), ("b1", 2), ("b2", 2), ("z", 0)):
        await replica.on_message(conv.message(name, ts=ts, text=name))
    clock.at(4)
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["z", "a", "b1", "b2", "c"]]


async def test_messages_of_one_second_keep_stream_order_across_replicas(
    make_replica, conv, clock
) -> None:
    # Two replicas read consecutive `wa.inbound` entries; the one holding the later entry
    # records it first. WhatsApp's timestamps have one-second resolution, so only the stream
    # can tell which came first: recording order would put "second" first.
    first_replica, second_replica = make_replica(quiet=4), make_replica(quiet=4)
    record_first = message_received.make_batch_handler(first_replica.ctx)
    record_second = message_received.make_batch_handler(second_replica.ctx)
    await record_second([(conv.message("b", text="second"), Delivery("wa.inbound", "1000-7", 1))])
    await record_first([(conv.message("a", text="first"), Delivery("wa.inbound", "1000-6", 1))])
    clock.at(4)
    await first_replica.ticker.tick()
    assert await first_replica.texts(conv) == [["first", "second"]]


async def test_every_message_type_is_carried(make_replica, conv, clock) -> None:
    replica = make_replica(quiet=1)
    image = conv.message("img", ts=0).payload.model_copy(
        update={
            "type": MessageType.IMAGE,
            "text": "look",
            "media": InboundMedia(id="media-1", mime_type="image/jpeg", caption="look"),
        }
    )
    reaction = conv.message("r", ts=1).payload.model_copy(
        update={"type": MessageType.REACTION, "text": "👍", "raw": {"reaction": {"emoji": "👍"}}}
    )
    for payload in (image, reaction):
        await replica.on_message(
            MessageReceived.create(payload, producer="t", conversation_id=conv.id)
        )
    clock.at(1)
    await replica.ticker.tick()
    [turn] = await replica.released(conv)
    got_image, got_reaction = turn.payload.messages
    assert got_image.type == MessageType.IMAGE
    assert got_image.media == InboundMedia(id="media-1", mime_type="image/jpeg", caption="look")
    assert got_reaction.type == MessageType.REACTION
    assert got_reaction.raw == {"reaction": {"emoji": "👍"}}
