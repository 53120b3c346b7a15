"""The outbox: a state change and its event never diverge, even across a crash."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import select, text

from baton_shared.db import Database, OutboxRelay, add_to_outbox, publish_committed
from baton_shared.db.tables import outbox
from baton_shared.events import PlatformError, PlatformErrorReceived, PlatformErrors
from baton_shared.observability import metrics
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

pytestmark = pytest.mark.integration

STREAM = names.WA_STATUSES


def make_event(n: int) -> PlatformErrorReceived:
    return PlatformErrorReceived.create(
        PlatformErrors(phone_number_id=str(n), errors=[PlatformError(code=n)]), producer="test"
    )


async def change_state(db: Database, event: PlatformErrorReceived) -> None:
    async with db.session() as session:
        await session.execute(text("INSERT INTO state VALUES (:id, 1)"), {"id": event.event_id})
        await add_to_outbox(session, event)


async def stream_ids(bus: Bus) -> list[str]:
    return [fields["event_id"] for _, fields in await bus.redis.xrange(bus.key(STREAM))]


async def test_crash_between_commit_and_publish_still_publishes_once(
    db: Database, bus: Bus
) -> None:
    events = [make_event(n) for n in range(3)]
    for event in events:
        await change_state(db, event)  # committed; the process "dies" before any publish
    assert await stream_ids(bus) == []

    await OutboxRelay(db, bus).publish_batch()  # a restarted relay
    assert await stream_ids(bus) == [str(e.event_id) for e in events]  # in commit order
    async with db.session() as session:
        assert (await session.execute(select(outbox))).all() == []


async def test_events_staged_together_publish_in_staged_order(db: Database, bus: Bus) -> None:
    events = [make_event(n) for n in (7, 3, 9, 1, 5)]  # ids unordered; no conversation id
    async with db.session() as session:
        await add_to_outbox(session, *events)
    await OutboxRelay(db, bus).publish_batch()
    assert await stream_ids(bus) == [str(e.event_id) for e in events]


async def test_committer_publishes_its_own_events_at_once(db: Database, bus: Bus) -> None:
    events = [make_event(n) for n in range(3)]
    async with db.session() as session:
        staged = await add_to_outbox(session, *events, wake_relay=False)
    assert not db.changed.is_set()  # the relay is not woken for them
    await publish_committed(db, bus, staged)
    assert await stream_ids(bus) == [str(e.event_id) for e in events]
    async with db.session() as session:
        assert (await session.execute(select(outbox))).all() == []


async def test_events_a_committer_failed_to_publish_are_left_to_the_relay(
    db: Database, bus: Bus, prefix: str
) -> None:
    events = [make_event(n) for n in range(2)]
    async with db.session() as session:
        staged = await add_to_outbox(session, *events, wake_relay=False)
    redis_away = Bus(Redis(host="127.0.0.1", port=1), prefix=prefix)  # nothing listens there
    try:
        await publish_committed(db, redis_away, staged)  # logs, does not raise
    finally:
        await redis_away.redis.aclose()
    assert await stream_ids(bus) == []
    await OutboxRelay(db, bus).publish_batch()  # its next poll
    assert await stream_ids(bus) == [str(e.event_id) for e in events]


async def test_a_relay_with_a_grace_leaves_young_rows_to_their_committer(
    db: Database, bus: Bus
) -> None:
    """Rows younger than the grace are being published by their committer: the relay leaves
    them; once older (the committer died, or Redis refused it), the relay publishes them."""
    events = [make_event(n) for n in range(2)]
    async with db.session() as session:
        await add_to_outbox(session, *events, wake_relay=False)
    relay = OutboxRelay(db, bus, grace_seconds=3600)
    assert await relay.publish_batch() == 0
    assert await stream_ids(bus) == []
    async with db.session() as session:  # an hour later
        await session.execute(text("UPDATE outbox SET created_at = created_at - interval '2h'"))
    assert await relay.publish_batch() == 2
    assert await stream_ids(bus) == [str(e.event_id) for e in events]


async def test_crash_after_publish_before_delete_publishes_once(db: Database, bus: Bus) -> None:
    event = make_event(1)
    await change_state(db, event)
    await bus.publish(event)  # the relay appended it, then "died" before deleting the row
    await OutboxRelay(db, bus).publish_batch()
    assert await stream_ids(bus) == [str(event.event_id)]


async def test_rolled_back_change_publishes_nothing(db: Database, bus: Bus) -> None:
    event = make_event(1)
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            await add_to_outbox(session, event)
            raise RuntimeError("handler failed after staging its event")
    assert await OutboxRelay(db, bus).publish_batch() == 0
    assert await stream_ids(bus) == []


async def test_running_relay_publishes_promptly_after_commit(db: Database, bus: Bus) -> None:
    relay = OutboxRelay(db, bus, poll_seconds=30)  # only the commit signal can wake it in time
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await wait_until(lambda: _is(relay.running))
        event = make_event(9)
        await change_state(db, event)
        await wait_until(lambda: _has(bus, str(event.event_id)), timeout=5, what="event published")
    finally:
        stop.set()
        await task


async def _is(value: bool) -> bool:
    return value


async def _has(bus: Bus, event_id: str) -> bool:
    return event_id in await stream_ids(bus)


async def test_only_commits_that_staged_events_wake_the_relay(db: Database) -> None:
    db.changed.clear()
    async with db.session() as session:  # a change with no event
        await session.execute(text("INSERT INTO state VALUES (gen_random_uuid(), 1)"))
    assert not db.changed.is_set()
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            await add_to_outbox(session, make_event(1))
            raise RuntimeError("rolled back")
    async with db.session() as session:  # the rolled-back staging is forgotten
        await session.execute(text("INSERT INTO state VALUES (gen_random_uuid(), 2)"))
    assert not db.changed.is_set()
    async with db.sessions() as session, session.begin():  # any session of the database
        await add_to_outbox(session, make_event(2))
    assert db.changed.is_set()


async def test_backlog_gauge_is_measured_once_drained_at_most_once_a_while(
    db: Database, bus: Bus
) -> None:
    def backlog() -> float | None:
        return REGISTRY.get_sample_value("baton_outbox_backlog", {"schema": db.schema})

    for n in range(3):
        await change_state(db, make_event(n))
    relay = OutboxRelay(db, bus, batch=2, backlog_every_seconds=3600)
    gauge = metrics.OUTBOX_BACKLOG.labels(db.schema)

    gauge.set(-1)
    assert await relay.publish_batch() == 2  # a full batch: more may wait, not measured yet
    assert backlog() == -1
    assert await relay.publish_batch() == 1  # drained: measured
    assert backlog() == 0
    await change_state(db, make_event(9))
    gauge.set(-1)
    assert await relay.publish_batch() == 1  # drained again within the interval: left alone
    assert backlog() == -1
