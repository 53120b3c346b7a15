"""Reclaimed entries and their delivery counts: the count decides when a failing entry goes
to the dead-letter stream, so it must be right for every entry, whatever its id."""

from __future__ import annotations

from typing import Any

import pytest

from baton_shared.events import PlatformError, PlatformErrorReceived, PlatformErrors
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, entry_fields
from baton_shared.streams.consumer import Consumer, Delivery
from baton_shared.testing import wait_until

from .test_consumer import running

pytestmark = pytest.mark.integration


def _error_event(n: int) -> PlatformErrorReceived:
    return PlatformErrorReceived.create(
        PlatformErrors(phone_number_id=str(n), errors=[PlatformError(code=n)]), producer="test"
    )


async def test_poison_entries_appended_in_one_millisecond_all_reach_the_dlq(bus: Bus) -> None:
    """Entries appended in one millisecond, on both sides of sequence 9/10 (any pipelined
    burst: `Bus.append_many`, `publish_many`). `Consumer._delivery_counts` used to ask
    XPENDING for `min(entry_ids)`..`max(entry_ids)` compared as text, where "t-10" sorts
    before "t-9": the range was empty or short, and the entries missed were told "second
    delivery" at every reclaim, so two poison entries "t-9" and "t-10" were retried for ever
    and never dead-lettered. Each must be dead-lettered after max_deliveries (3)."""
    stream = names.WA_STATUSES
    key = bus.key(stream)
    await bus.redis.xgroup_create(key, "g", id="0", mkstream=True)
    ms = 1_700_000_000_000
    ids = [f"{ms}-{seq}" for seq in range(11)]  # 11 entries of one pipelined burst
    for n, entry_id in enumerate(ids):
        await bus.redis.xadd(key, entry_fields(_error_event(n)), id=entry_id)
    poison = ids[9:]  # "t-9" and "t-10"
    counts: dict[str, list[int]] = {}

    async def fails_on_poison(event: Any, delivery: Delivery) -> None:
        counts.setdefault(delivery.entry_id, []).append(delivery.count)
        if delivery.entry_id in poison:
            raise RuntimeError("poison")

    c = Consumer(
        bus,
        stream=stream,
        group="g",
        name="c1",
        handler=fails_on_poison,
        block_ms=50,
        reclaim_idle_ms=100,
        max_deliveries=3,
    )
    dead_key = bus.key(names.dlq(stream))

    async def dead_or_far_past_the_limit() -> bool:
        if int(await bus.redis.xlen(dead_key)) == 2:
            return True
        return all(len(counts.get(e, [])) >= 6 for e in poison)  # twice max_deliveries

    async with running(c):
        await wait_until(dead_or_far_past_the_limit, timeout=20, what="poison handled")
    dead = {f["dlq_entry_id"]: f for _, f in await bus.redis.xrange(dead_key)}
    assert sorted(dead) == sorted(poison), {e: counts[e] for e in poison}
    for entry_id in poison:
        assert counts[entry_id] == [1, 2, 3], (entry_id, counts[entry_id])
        assert dead[entry_id]["dlq_deliveries"] == "3"
    assert all(counts[e] == [1] for e in ids[:9])
    assert int((await bus.redis.xpending(key, "g"))["pending"]) == 0


async def _ge(value: Any, n: int) -> bool:
    return await value >= n


async def test_reclaim_tells_each_handler_its_true_delivery_count(bus: Bus) -> None:
    """Entries left by a dead consumer (ids from ordinary XADDs, different milliseconds) are
    reclaimed in stream order with their real delivery counts; a failing one is
    dead-lettered after max_deliveries without holding back the ones after it."""
    stream = names.WA_STATUSES
    key = bus.key(stream)
    await bus.redis.xgroup_create(key, "g", id="0", mkstream=True)
    events = [_error_event(n) for n in range(4)]
    for event in events:
        await bus.publish(event)
    await bus.redis.xreadgroup("g", "dead", {key: ">"}, count=10)  # read, then died
    seen: list[tuple[int, int]] = []

    async def fails_on_one(event: Any, delivery: Delivery) -> None:
        code = event.payload.errors[0].code
        seen.append((code, delivery.count))
        if code == 1:
            raise RuntimeError("poison one")

    c = Consumer(
        bus,
        stream=stream,
        group="g",
        name="alive",
        handler=fails_on_one,
        block_ms=50,
        reclaim_idle_ms=100,
        max_deliveries=3,
    )
    dead_key = bus.key(names.dlq(stream))

    async def dead_one() -> bool:
        return int(await bus.redis.xlen(dead_key)) == 1

    async with running(c):
        await wait_until(dead_one, timeout=15, what="the poison entry dead-lettered")

        async def none_pending() -> bool:
            return int((await bus.redis.xpending(key, "g"))["pending"]) == 0

        await wait_until(none_pending, what="everything acknowledged")
    assert [s for s in seen if s[0] != 1] == [(0, 2), (2, 2), (3, 2)]  # in order, once each
    assert [s for s in seen if s[0] == 1] == [(1, 2), (1, 3)]
    [(_, fields)] = await bus.redis.xrange(dead_key)
    assert fields["dlq_error"] == "RuntimeError: poison one"
    assert fields["dlq_deliveries"] == "3"
