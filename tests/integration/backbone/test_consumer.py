"""The consumer layer against real Redis and PostgreSQL, one test per failure mode."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from baton_shared.db import Database, claim_inbox
from baton_shared.events import (
    Event,
    MessageReceived,
    PlatformError,
    PlatformErrorReceived,
    PlatformErrors,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, entry_fields
from baton_shared.streams.consumer import Consumer, Delivery, Handler
from baton_shared.testing import drained, wait_until

pytestmark = pytest.mark.integration

STREAM = names.WA_STATUSES


def make_event(n: int) -> PlatformErrorReceived:
    return PlatformErrorReceived.create(
        PlatformErrors(phone_number_id=str(n), errors=[PlatformError(code=n)]), producer="test"
    )


def consumer(bus: Bus, handler: Handler, name: str = "c1", **options: int) -> Consumer:
    defaults = {"block_ms": 50, "reclaim_idle_ms": 200, "max_deliveries": 3}
    return Consumer(
        bus, stream=STREAM, group="g", name=name, handler=handler, **(defaults | options)
    )


@contextlib.asynccontextmanager
async def running(*consumers: Consumer) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def pending(bus: Bus) -> int:
    info = await bus.redis.xpending(bus.key(STREAM), "g")
    return int(info["pending"])


async def test_killed_consumer_entry_is_finished_by_another(bus: Bus) -> None:
    started = asyncio.Event()
    seen: list[tuple[str, str, int]] = []

    async def hangs(event: Event, delivery: Delivery) -> None:
        started.set()
        await asyncio.Event().wait()  # never returns: the process "dies" here

    async def works(event: Event, delivery: Delivery) -> None:
        seen.append((str(event.event_id), delivery.entry_id, delivery.count))

    doomed = consumer(bus, hangs, name="doomed")
    await doomed.ensure_group()
    event = make_event(1)
    await bus.publish(event)
    task = asyncio.create_task(doomed.run(asyncio.Event()))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()  # killed mid-entry: read, never acknowledged
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await pending(bus) == 1

    async with running(consumer(bus, works, name="survivor")):
        await wait_until(lambda: _true(bool(seen)), what="survivor handles the entry")
        await wait_until(lambda: _eq(pending(bus), 0), what="entry acknowledged")
    assert [s[0] for s in seen] == [str(event.event_id)]
    assert seen[0][2] == 2  # the second delivery of that entry


async def test_poison_entry_goes_to_dlq_and_stream_keeps_flowing(bus: Bus) -> None:
    handled: list[int] = []

    async def fails_on_two(event: Event, delivery: Delivery) -> None:
        assert isinstance(event, PlatformErrorReceived)
        code = event.payload.errors[0].code
        if code == 2:
            raise RuntimeError("cannot handle code 2")
        handled.append(code)

    c = consumer(bus, fails_on_two)
    await c.ensure_group()
    for n in (1, 2, 3):
        await bus.publish(make_event(n))
    await bus.redis.xadd(bus.key(STREAM), {"event_type": "inbound.platform_error_received"})
    await bus.publish(make_event(4))

    async with running(c):
        await wait_until(lambda: _true(sorted(handled) == [1, 3, 4]), what="good entries handled")
        dlq = bus.key(names.dlq(STREAM))
        await wait_until(lambda: _eq(bus.redis.xlen(dlq), 2), timeout=15, what="two DLQ entries")
    entries = [fields for _, fields in await bus.redis.xrange(dlq)]
    errors = sorted(e["dlq_error"] for e in entries)
    assert "unparseable entry" in errors[1]  # garbage: straight to the DLQ, not retried
    assert errors[0] == "RuntimeError: cannot handle code 2"
    failed = next(e for e in entries if e["dlq_error"].startswith("RuntimeError"))
    assert failed["dlq_deliveries"] == "3"
    assert failed["event_type"] == "inbound.platform_error_received"
    assert await pending(bus) == 0
    assert sorted(handled) == [1, 3, 4]


async def test_redelivered_event_is_processed_once(bus: Bus, db: Database) -> None:
    async def counts(event: Event, delivery: Delivery) -> None:
        async with db.session() as session:
            if not await claim_inbox(session, "g", event.event_id):
                return
            await session.execute(text("INSERT INTO state VALUES (:id, 1)"), {"id": event.event_id})

    c = consumer(bus, counts)
    await c.ensure_group()
    event = make_event(7)
    # The same event appended twice bypasses the bus's own de-duplication: a redelivery.
    for _ in range(2):
        await bus.redis.xadd(bus.key(STREAM), entry_fields(event))
    async with running(c):
        await wait_until(lambda: all_acked(bus), what="both entries read and acknowledged")
    async with db.session() as session:
        assert await session.scalar(text("SELECT count(*) FROM state")) == 1


async def test_unknown_event_type_is_acknowledged_and_skipped(bus: Bus) -> None:
    seen: list[Event] = []

    async def record(event: Event, delivery: Delivery) -> None:
        seen.append(event)

    c = consumer(bus, record)
    await c.ensure_group()
    await bus.redis.xadd(
        bus.key(STREAM),
        {"event_type": "future.thing_happened", "schema_version": "1", "body": "{}"},
    )
    await bus.publish(make_event(5))
    async with running(c):
        await wait_until(lambda: _true(len(seen) == 1), what="known event handled")
        await wait_until(lambda: _eq(pending(bus), 0), what="unknown event acknowledged")
    assert await bus.redis.xlen(bus.key(names.dlq(STREAM))) == 0


async def test_publish_trims_a_stream_that_is_not_batons_approximately(bus: Bus) -> None:
    # Baton's own streams are trimmed by acknowledgement only (see test_trim.py).
    small = Bus(bus.redis, prefix=bus.prefix, maxlen=100)
    for n in range(1000):
        await small.publish(make_event(n), stream="crm.exports")
        await small.publish(make_event(n + 1000))
    assert await bus.redis.xlen(bus.key("crm.exports")) < 1000
    assert await bus.redis.xlen(bus.key(STREAM)) == 1000


async def test_an_event_published_twice_is_appended_once(bus: Bus) -> None:
    event = MessageReceived.create(
        {
            "message_id": "wamid.X",
            "phone_number_id": "1",
            "wa_id": "2",
            "timestamp": datetime.now(UTC),
            "type": "text",
        },
        producer="test",
    )
    first = await bus.publish(event)
    second = await bus.publish(event)
    assert first is not None
    assert second is None
    assert await bus.redis.xlen(bus.key(names.WA_INBOUND)) == 1


async def _true(value: bool) -> bool:
    return value


async def _eq(awaitable: Awaitable[object], expected: object) -> bool:
    return await awaitable == expected


async def all_acked(bus: Bus) -> bool:
    """Every entry of the stream was read by the group and acknowledged."""
    return await drained(bus.redis, bus.key(STREAM))


async def test_concurrent_consumer_overlaps_handlers_and_acks_each(bus: Bus) -> None:
    inside = 0
    most = 0
    release = asyncio.Event()
    done: list[int] = []

    async def slow(event: Event, delivery: Delivery) -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await release.wait()
        assert isinstance(event, PlatformErrorReceived)
        done.append(event.payload.errors[0].code)
        inside -= 1

    c = consumer(bus, slow, concurrency=4)
    await c.ensure_group()
    for n in range(10):
        await bus.publish(make_event(n))
    async with running(c):
        await wait_until(lambda: _true(most == 4), what="four handlers at once, no more")
        release.set()
        await wait_until(lambda: all_acked(bus), what="every entry acknowledged")
    assert sorted(done) == list(range(10))
    assert most == 4


async def test_publish_survives_redis_losing_its_scripts(bus: Bus) -> None:
    await bus.publish(make_event(1))
    # SCRIPT FLUSH would hit every other run sharing this Redis: point this bus at a hash
    # Redis does not know instead, which is what a flush looks like from here.
    bus._publish_once.sha = "0" * 40
    assert await bus.publish(make_event(2)) is not None
    assert await bus.redis.xlen(bus.key(STREAM)) == 2


async def test_an_outage_does_not_count_towards_dead_lettering(bus: Bus) -> None:
    down = True
    handled: list[int] = []

    async def needs_the_database(event: Event, delivery: Delivery) -> None:
        if down:
            raise ConnectionRefusedError(111, "Connect call failed")
        handled.append(delivery.count)

    c = consumer(bus, needs_the_database, max_deliveries=2)
    await c.ensure_group()
    await bus.publish(make_event(1))

    async def delivered_more_than_the_limit() -> bool:
        entries = await bus.redis.xpending_range(bus.key(STREAM), "g", "-", "+", 1)
        return bool(entries) and entries[0]["times_delivered"] > 3

    async with running(c):
        await wait_until(delivered_more_than_the_limit, timeout=20, what="retried past the limit")
        assert c.outage_pause > 0  # backing off while nothing can succeed
        down = False
        await wait_until(lambda: _true(bool(handled)), timeout=15, what="handled once back")
        await wait_until(lambda: _eq(pending(bus), 0), what="acknowledged")
    assert await bus.redis.xlen(bus.key(names.dlq(STREAM))) == 0
    assert c.outage_pause == 0


async def test_a_crash_while_retrying_after_an_outage_counts_again(bus: Bus) -> None:
    # The outage mark is taken off before a retry: a retry that kills the process (no
    # exception recorded) counts, so an entry that crashes the consumer still ends in the DLQ.
    dying = asyncio.Event()

    async def outage_then_crash(event: Event, delivery: Delivery) -> None:
        if delivery.count == 1:
            raise ConnectionRefusedError(111, "Connect call failed")
        dying.set()
        await asyncio.Event().wait()  # the process dies in here

    first = consumer(bus, outage_then_crash, name="first", max_deliveries=2)
    await first.ensure_group()
    await bus.publish(make_event(1))
    task = asyncio.create_task(first.run(asyncio.Event()))
    await asyncio.wait_for(dying.wait(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    dlq = bus.key(names.dlq(STREAM))
    async with running(consumer(bus, outage_then_crash, name="second", max_deliveries=2)):
        await wait_until(lambda: _eq(bus.redis.xlen(dlq), 1), timeout=10, what="dead-lettered")
    [(_, fields)] = await bus.redis.xrange(dlq)
    assert fields["dlq_error"] == "gave up after 2 deliveries"


async def test_dead_letter_streams_are_never_trimmed_by_length(bus: Bus) -> None:
    assert bus.maxlen_of("crm.exports") == bus.maxlen > 0
    assert bus.maxlen_of(STREAM) == 0  # Baton's: by acknowledgement only
    assert bus.maxlen_of(names.dlq(STREAM)) == 0
    assert bus.maxlen_of(names.dlq(names.WA_WEBHOOKS)) == 0


async def test_after_an_outage_an_ordered_consumer_keeps_stream_order(bus: Bus) -> None:
    # Entries read while the database was away stay with the consumer; when it is back they
    # are handled before anything newer, so a stream whose order matters keeps it.
    down = True
    handled: list[int] = []

    async def needs_the_database(event: Event, delivery: Delivery) -> None:
        assert isinstance(event, PlatformErrorReceived)
        if down:
            raise ConnectionRefusedError(111, "Connect call failed")
        handled.append(event.payload.errors[0].code)

    c = consumer(bus, needs_the_database, reclaim_idle_ms=60_000)
    await c.ensure_group()
    for n in (1, 2, 3):
        await bus.publish(make_event(n))

    async with running(c):
        await wait_until(lambda: _true(c.outage_pause > 0), what="the outage met")
        for n in (4, 5):
            await bus.publish(make_event(n))
        down = False
        await wait_until(lambda: _true(len(handled) == 5), timeout=15, what="all handled")
    assert handled == [1, 2, 3, 4, 5]
