"""Failure modes: duplicates, two replicas, a replica killed at every step, Redis state lost."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from baton_buffer import keys
from baton_buffer.db import repo
from baton_buffer.main import build_runtime
from baton_buffer.release import release
from baton_buffer.settings import BufferSettings
from baton_buffer.timers import Timers
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import agents_caught_up

pytestmark = pytest.mark.integration


async def test_duplicate_inbound_events_are_counted_once(make_replica, conv, clock) -> None:
    replica = make_replica(quiet=4)
    event = conv.message(1)
    await replica.on_message(event)
    await replica.on_message(event)  # the same entry redelivered
    resent = conv.message(1)  # WhatsApp delivered it twice: new event, same wamid
    assert resent.event_id != event.event_id
    await replica.on_message(resent)
    assert await replica.stored(conv) == 1
    clock.at(4)
    await replica.ticker.tick()
    await replica.on_message(resent)  # after release: still nothing new
    clock.at(100)
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m1"]]


async def test_two_replicas_release_every_turn_once(make_replica, new_conv, clock) -> None:
    a, b = make_replica(quiet=1), make_replica(quiet=1)
    convs = [new_conv() for _ in range(30)]
    for i, conv in enumerate(convs):
        for n in range(3):
            await (a if (i + n) % 2 else b).on_message(conv.message(n, ts=n))
    clock.at(1)
    for _ in range(3):
        await asyncio.gather(a.ticker.tick(), b.ticker.tick(), a.ticker.tick(), b.ticker.tick())
    for conv in convs:
        assert await a.texts(conv) == [["m0", "m1", "m2"]]


async def test_concurrent_releases_of_one_conversation_make_one_turn(
    make_replica, conv, clock
) -> None:
    # Even bypassing the Redis claim (a lease lapsed under a slow replica), PostgreSQL's row
    # lock and in-flight record let exactly one release through.
    a, b = make_replica(quiet=0), make_replica(quiet=0)
    await a.on_message(conv.message(1))
    await asyncio.gather(*(release(r.ctx, conv.id) for r in (a, b, a, b)))
    assert await a.texts(conv) == [["m1"]]


async def test_killed_mid_window_the_turn_is_released_once_after_restart(
    make_replica, conv, clock
) -> None:
    doomed = make_replica(quiet=4)
    await doomed.on_message(conv.message(1))
    clock.at(1)
    await doomed.on_message(conv.message(2, ts=1))
    del doomed  # killed mid-window: nothing of it survives but PostgreSQL and Redis
    restarted = make_replica(quiet=4)
    clock.at(5)
    await restarted.ticker.tick()
    await restarted.ticker.tick()
    assert await restarted.texts(conv) == [["m1", "m2"]]


async def test_killed_after_claim_before_commit(make_replica, conv, clock) -> None:
    doomed = make_replica(quiet=1, lease=30)
    await doomed.on_message(conv.message(1))
    clock.at(1)
    [claim] = await doomed.ctx.timers.claim_due(clock(), 10)  # claimed, then killed
    assert claim.conversation_id == conv.id
    survivor = make_replica(quiet=1, lease=30)
    assert await survivor.ticker.tick() == 0  # the claim holds until its lease lapses
    clock.at(31)
    assert await survivor.ticker.tick() == 1
    clock.at(1000)
    await survivor.ticker.tick()
    assert await survivor.texts(conv) == [["m1"]]


async def test_killed_after_commit_before_settle(make_replica, conv, clock) -> None:
    doomed = make_replica(quiet=1, lease=30)
    await doomed.on_message(conv.message(1))
    clock.at(1)
    [claim] = await doomed.ctx.timers.claim_due(clock(), 10)
    await release(doomed.ctx, claim.conversation_id)  # committed, then killed before settle
    survivor = make_replica(quiet=1, lease=30)
    clock.at(2)
    await survivor.on_message(conv.message(2, ts=2))  # must wait for turn 1's completion
    clock.at(31)
    await survivor.ticker.tick()
    assert await survivor.texts(conv) == [["m1"]]
    [turn] = await survivor.released(conv)
    await survivor.on_completed(conv.completed(turn))
    await survivor.ticker.tick()
    assert await survivor.texts(conv) == [["m1"], ["m2"]]


async def test_crash_between_commit_and_timer_is_healed_by_redelivery(
    make_replica, conv, clock, bus
) -> None:
    replica = make_replica(quiet=1)
    event = conv.message(1)
    await replica.on_message(event)
    await bus.redis.delete(bus.key(keys.deadlines()))  # the timer write never happened
    clock.at(1)
    await replica.ticker.tick()
    assert await replica.released(conv) == []
    await replica.on_message(event)  # the unacknowledged entry is delivered again
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m1"]]


async def test_lost_redis_state_is_rebuilt_from_postgresql(
    make_replica, new_conv, clock, bus
) -> None:
    replica = make_replica(quiet=0, stuck=120)
    waiting, in_flight = new_conv(), new_conv()
    await replica.on_message(in_flight.message(1))
    await replica.ticker.tick()
    await replica.on_message(in_flight.message(2))
    await replica.on_message(waiting.message(1))
    await bus.redis.delete(bus.key(keys.deadlines()), bus.key(keys.claims()))  # Redis lost it all
    assert await replica.ticker.recover() >= 2
    await agents_caught_up(bus)  # the agent took turn 1 and never answered
    clock.at(120)
    await replica.ticker.tick()
    assert await replica.texts(waiting) == [["m1"]]
    assert await replica.texts(in_flight) == [["m1"], ["m2"]]  # stuck turn timed out


async def test_a_release_waiting_for_the_lock_sees_what_the_holder_committed(
    make_replica, conv, clock
) -> None:
    # m1 and m2 are pending (max 3). A writer holds the conversation's lock and records m3;
    # a release waits for the lock meanwhile. Once it has the lock it must read the holder's
    # commit and close the full burst now, not at quiet time (a statement that waited for a
    # row lock keeps its old snapshot: the arrivals must be read by a later statement).
    replica = make_replica(quiet=100, max_messages=3)
    await replica.on_message(conv.message(1))
    await replica.on_message(conv.message(2))
    async with replica.ctx.db.sessions() as session, session.begin():
        await session.execute(
            text("SELECT 1 FROM conversations WHERE conversation_id = :c FOR UPDATE"),
            {"c": conv.id},
        )
        waiting = asyncio.create_task(release(replica.ctx, conv.id))

        async def release_waits_for_the_lock() -> bool:
            async with replica.ctx.db.sessions() as probe:
                waiting = await probe.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            return bool(waiting)

        await wait_until(release_waits_for_the_lock, timeout=10)
        await repo.record_messages(
            session, [repo.Inbound(conv.message(3), conv.id)], datetime.fromtimestamp(clock(), UTC)
        )
    await asyncio.wait_for(waiting, timeout=10)
    [turn] = await replica.released(conv)
    assert turn.payload.closed_by.value == "max_messages"
    assert sorted(m.text for m in turn.payload.messages) == ["m1", "m2", "m3"]


async def test_a_writer_does_not_wait_for_a_held_conversation(make_replica, conv, clock) -> None:
    # Another transaction (a turn completion, the ticker, another replica) holds the
    # conversation's row while a due message is recorded: the writer must not queue behind
    # it; it leaves the conversation due now, and the ticker releases the burst once the
    # holder is done.
    replica = make_replica(quiet=0)
    await replica.on_message(conv.message(0))
    await replica.on_completed(conv.completed((await replica.released(conv))[0]))
    async with replica.ctx.db.sessions() as session, session.begin():
        await session.execute(
            text("SELECT 1 FROM conversations WHERE conversation_id = :c FOR UPDATE"),
            {"c": conv.id},
        )
        await asyncio.wait_for(replica.on_message(conv.message(1)), timeout=10)
        assert len(await replica.released(conv)) == 1
        assert await replica.ctx.timers.deadline(conv.id) == clock()
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m0"], ["m1"]]


async def test_a_turn_whose_publish_failed_is_published_by_the_relay_past_its_grace(
    make_replica, conv, clock, bus: Bus, database_url: str, redis_url: str
) -> None:
    """Redis refuses the release's own publish: the TurnReady stays in the outbox. The
    buffer's relay leaves it while the release may still be publishing it (5 s), then
    publishes it: the turn is not lost."""
    replica = make_replica(quiet=4)
    await replica.on_message(conv.message(1))
    gone = Bus(Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5), prefix=bus.prefix)
    refused = dataclasses.replace(replica.ctx, timers=Timers(gone, lease_seconds=30))
    clock.at(4)
    try:
        await release(refused, conv.id)  # committed; its publish fails (logged)
    finally:
        await gone.aclose()
    [staged] = await replica.released(conv)
    turns = bus.key(names.CONV_TURNS)
    assert await bus.redis.xlen(turns) == 0

    settings = BufferSettings(
        baton_env="test", database_url=database_url, redis_url=redis_url, redis_prefix=bus.prefix
    )
    runtime, _, _ = build_runtime(settings)
    try:
        assert await runtime.relay.publish_batch() == 0  # young: its release may publish it
        async with replica.ctx.db.session() as session:
            await session.execute(
                text("UPDATE outbox SET created_at = created_at - interval '1 minute'")
            )
        assert await runtime.relay.publish_batch() == 1
    finally:
        await runtime.bus.aclose()
        await runtime.db.dispose()
    [(_, fields)] = await bus.redis.xrange(turns)
    assert fields["event_id"] == str(staged.event_id)
