"""The Redis timers: deadlines only move earlier, claims are exclusive and lapse."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from baton_buffer.timers import Timers

from .conftest import BASE, Clock, Replica

pytestmark = pytest.mark.integration


async def test_schedule_never_postpones(bus) -> None:
    timers = Timers(bus, lease_seconds=10)
    await timers.schedule("c", 100)
    await timers.schedule("c", 200)
    assert await timers.deadline("c") == 100
    await timers.schedule("c", 50)
    assert await timers.deadline("c") == 50


async def test_only_due_conversations_are_claimed_once(bus) -> None:
    timers = Timers(bus, lease_seconds=10)
    await timers.schedule_many({f"c{i}": i for i in range(20)})
    claims = await asyncio.gather(*(timers.claim_due(9.5, 3) for _ in range(8)))
    claimed = [c.conversation_id for batch in claims for c in batch]
    assert sorted(claimed) == sorted(f"c{i}" for i in range(10))
    assert await timers.deadline("c10") == 10


async def test_a_claim_lapses_and_a_settled_claim_is_freed(bus) -> None:
    timers = Timers(bus, lease_seconds=10)
    await timers.schedule("c", 0)
    [claim] = await timers.claim_due(0, 10)
    await timers.schedule("c", 1)  # a new message while the claim is held
    assert await timers.claim_due(5, 10) == []  # held: not claimed again, stays due
    [again] = await timers.claim_due(10, 10)  # lease lapsed (the holder died)
    assert again.conversation_id == "c"
    await timers.settle(claim, 100)  # the old holder's late settle does not free the new claim
    assert await timers.claim_due(11, 10) == []
    await timers.settle(again, None)
    assert await timers.deadline("c") == 1  # the new message's deadline was kept
    [last] = await timers.claim_due(12, 10)
    assert last.conversation_id == "c"


async def test_next_deadline_is_the_earliest_still_to_come(bus) -> None:
    timers = Timers(bus, lease_seconds=10)
    assert await timers.next_deadline(0) is None
    await timers.schedule_many({"due": 5, "soon": 12.5, "later": 30})
    assert await timers.next_deadline(10) == 12.5  # "due" is past: claimed, or held
    assert await timers.next_deadline(12.5) == 30
    assert await timers.next_deadline(30) is None


async def test_the_ticker_sleeps_until_the_next_deadline_at_most_a_tick(
    make_replica: Callable[..., Replica], clock: Clock
) -> None:
    ticker = make_replica().ticker
    ticker.tick_seconds = 0.05
    assert await ticker.pause() == 0.05  # nothing scheduled
    await ticker.ctx.timers.schedule("later", BASE + 10)
    assert await ticker.pause() == 0.05
    await ticker.ctx.timers.schedule("soon", BASE + 0.02)
    assert await ticker.pause() == pytest.approx(0.02)
    clock.at(0.02)  # due now (another replica holds it, say): a whole tick
    assert await ticker.pause() == 0.05
