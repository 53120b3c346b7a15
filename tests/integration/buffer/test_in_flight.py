"""One turn in flight per conversation: completion or the stuck-turn timeout releases the next."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from baton_buffer import metrics
from baton_buffer.agents import AgentWatch
from baton_shared.streams import names
from baton_shared.testing import wait_until

from .conftest import AGENT, agents_caught_up

pytestmark = pytest.mark.integration


async def test_messages_during_a_turn_join_the_next_turn(make_replica, conv, clock) -> None:
    replica = make_replica(quiet=4)
    await replica.on_message(conv.message(1))
    clock.at(4)
    await replica.ticker.tick()
    [first] = await replica.released(conv)
    for n, t in ((2, 5), (3, 6)):
        clock.at(t)
        await replica.on_message(conv.message(n, ts=t))
    clock.at(60)  # long past quiet and max time: still gated by the turn in flight
    await replica.ticker.tick()
    assert len(await replica.released(conv)) == 1
    await replica.on_completed(conv.completed(first))
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m1"], ["m2", "m3"]]
    first_row, second_row = await replica.turn_rows(conv)
    assert first_row["outcome"] == "answered"
    assert first_row["completed_at"] is not None
    assert second_row["sequence"] == 2
    assert second_row["closed_by"] == "quiet"  # quiet since t=6, due at 10


async def test_completion_without_pending_messages_waits_for_the_next(
    make_replica, conv, clock
) -> None:
    replica = make_replica(quiet=0)
    await replica.on_message(conv.message(1))
    await replica.ticker.tick()
    [first] = await replica.released(conv)
    await replica.on_completed(conv.completed(first))
    await replica.on_completed(conv.completed(first))  # redelivered: changes nothing
    await replica.ticker.tick()
    assert len(await replica.released(conv)) == 1
    await replica.on_message(conv.message(2))
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m1"], ["m2"]]


async def test_stuck_turn_times_out_and_releases_the_next(make_replica, conv, clock, bus) -> None:
    replica = make_replica(quiet=0, stuck=120)
    stuck_before = metrics.STUCK_TURNS._value.get()
    await replica.on_message(conv.message(1))
    await replica.ticker.tick()
    [first] = await replica.released(conv)
    clock.at(1)
    await replica.on_message(conv.message(2, ts=1))
    clock.at(119.9)
    await agents_caught_up(bus)  # an agent took turn 1 and never answered
    await replica.ticker.tick()
    assert len(await replica.released(conv)) == 1
    clock.at(120)
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m1"], ["m2"]]
    assert metrics.STUCK_TURNS._value.get() == stuck_before + 1
    first_row, _ = await replica.turn_rows(conv)
    assert first_row["timed_out_at"] is not None

    # The agent reports the stuck turn late: recorded, but turn 2 stays in flight.
    await replica.on_completed(conv.completed(first))
    await replica.on_message(conv.message(3, ts=121))
    clock.at(200)
    await replica.ticker.tick()
    assert len(await replica.released(conv)) == 2
    first_row, _ = await replica.turn_rows(conv)
    assert first_row["outcome"] == "answered"


async def test_completion_of_an_unknown_turn_is_ignored(make_replica, conv, clock) -> None:
    replica = make_replica(quiet=0)
    other = make_replica(quiet=0)
    await other.on_message(conv.message(1))
    await other.ticker.tick()
    [turn] = await other.released(conv)
    stranger = turn.model_copy(
        update={"payload": turn.payload.model_copy(update={"turn_id": uuid.uuid4()})}
    )
    await replica.on_completed(conv.completed(stranger))
    await replica.on_message(conv.message(2))
    await replica.ticker.tick()
    assert len(await replica.released(conv)) == 1


async def test_active_conversations_counts_open_bursts_and_turns_in_flight(
    make_replica, new_conv, clock
) -> None:
    replica = make_replica(quiet=4)
    a, b = new_conv(), new_conv()
    before = await replica.ticker.sample_active()
    await replica.on_message(a.message(1))
    await replica.on_message(a.message(2))
    await replica.on_message(b.message(1))
    assert await replica.ticker.sample_active() == before + 2  # two open bursts
    assert metrics.ACTIVE_CONVERSATIONS._value.get() == before + 2
    clock.at(4)
    await replica.ticker.tick()
    [turn_a] = await replica.released(a)
    [turn_b] = await replica.released(b)
    assert await replica.ticker.sample_active() == before + 2  # two turns in flight
    clock.at(5)
    await replica.on_message(a.message(3, ts=5))  # in flight and a new burst: counted once
    await replica.on_completed(b.completed(turn_b))
    assert await replica.ticker.sample_active() == before + 1
    await replica.on_completed(a.completed(turn_a))
    clock.at(9)
    await replica.ticker.tick()
    [_, second_a] = await replica.released(a)
    await replica.on_completed(a.completed(second_a))
    assert await replica.ticker.sample_active() == before


async def test_writers_release_due_bursts_without_waiting_for_the_ticker(
    make_replica, conv, clock
) -> None:
    # With nothing to wait for, the message's own transaction releases its turn, and the
    # completion's transaction releases the burst that waited behind the turn in flight.
    replica = make_replica(quiet=0)
    await replica.on_message(conv.message(1))
    [first] = await replica.released(conv)
    await replica.on_message(conv.message(2))
    await replica.on_message(conv.message(3))
    assert len(await replica.released(conv)) == 1  # gated by the turn in flight
    await replica.on_completed(conv.completed(first))
    assert await replica.texts(conv) == [["m1"], ["m2", "m3"]]
    assert await replica.ctx.timers.deadline(conv.id) is not None  # the stuck-turn look


async def test_a_message_recorded_while_its_turn_completes_is_not_left_waiting(
    make_replica, conv, clock, monkeypatch
) -> None:
    # m2 arrives while the completion's transaction has read the pending messages (none) and
    # not yet committed. Were m2 committed and looked at then, its look would see the turn
    # still in flight and set only the stuck-turn deadline (t=124), and m2 would wait two
    # minutes for a burst that closed at t=9. It cannot: the completion has updated the
    # conversation's row, so recording m2 (INSERT ... ON CONFLICT on that row) waits for the
    # completion's commit, and m2's own look comes after it.
    from baton_buffer.db import repo

    replica = make_replica(quiet=4, stuck=120)
    await replica.on_message(conv.message(1))
    clock.at(4)
    await replica.ticker.tick()
    [first] = await replica.released(conv)

    read_pending = repo.pending_messages_of
    arriving: list[asyncio.Task[None]] = []

    async def m2_arrives_meanwhile(session, conversation_ids):  # type: ignore[no-untyped-def]
        found = await read_pending(session, conversation_ids)
        if not arriving:
            arriving.append(asyncio.create_task(replica.on_message(conv.message(2, ts=5))))
            await asyncio.sleep(0)  # let it start its transaction while ours is open
        return found

    monkeypatch.setattr(repo, "pending_messages_of", m2_arrives_meanwhile)
    clock.at(5)
    await replica.on_completed(conv.completed(first))
    monkeypatch.undo()
    await asyncio.wait_for(arriving[0], 10)

    clock.at(9)  # m2 has been quiet for 4 s
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m1"], ["m2"]]


async def test_a_turn_waiting_for_agents_that_are_down_or_behind_is_not_stuck(
    make_replica, new_conv, clock, bus
) -> None:
    # Every agent down longer than the stuck-turn timeout, the customer writing again: turn 2
    # must wait for turn 1, or the agents, once back, would take both at once (invariant 5).
    replica = make_replica(quiet=0, stuck=120)
    conv, other = new_conv(), new_conv()
    deferred = metrics.STUCK_DEFERRED._value.get()
    await replica.on_message(conv.message(1))
    await replica.ticker.tick()
    clock.at(1)
    await replica.on_message(conv.message(2, ts=1))

    clock.at(500)  # no agent has ever started
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m1"]]
    assert metrics.STUCK_DEFERRED._value.get() > deferred

    await agents_caught_up(bus)  # an agent starts, takes turn 1...
    await replica.on_message(other.message(1, ts=500))  # ...but not the turn released after it
    await replica.ticker.tick()
    clock.at(1000)
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m1"]]  # the agents are behind: still waiting

    await agents_caught_up(bus)  # caught up and alive: turn 1 is lost, not waiting
    clock.at(1200)
    await replica.ticker.tick()
    assert await replica.texts(conv) == [["m1"], ["m2"]]


async def test_agents_that_stopped_reading_are_taken_for_down(bus) -> None:
    await agents_caught_up(bus)
    assert await AgentWatch(bus, active_seconds=600).behind() is None

    async def idle() -> str | None:
        return await AgentWatch(bus, active_seconds=0.05).behind()

    assert await wait_until(idle) == "no agent is running"
    consumers = await bus.redis.xinfo_consumers(bus.key(names.CONV_TURNS), names.GROUP_AGENT)
    assert [c["name"] for c in consumers] == [AGENT]
