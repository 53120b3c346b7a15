"""Invariant 6 with several sender replicas: a customer's messages leave in the order of their
`wa.outbound` entries, whichever replica records them first.

The consumer group hands consecutive entries to different replicas. Here the other replica is
played by the test: it reads an entry and stalls (or dies) before recording it, while the
running sender reads and records the next one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from baton_sender.context import SenderContext
from baton_sender.db import repo
from baton_sender.db.models import messages
from baton_sender.dispatch.order import MAX_SCAN, NO_LIMIT, Bound, RecordedBound
from baton_sender.main import create_app
from baton_sender.settings import SenderSettings
from baton_shared.db import Database
from baton_shared.events import TurnCompleted, TurnOutcome, TurnResult
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, entry_fields, position
from baton_shared.streams.consumer import OUTAGE_MARK
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, Emulator, clean_schema, command, handled, new_customer

pytestmark = pytest.mark.integration

STALLED = "stalled-replica"


async def _bodies(emulator: Emulator, to: str, n: int) -> list[str] | None:
    bodies = [m["body"]["text"]["body"] for m in await emulator.messages(to)]
    return bodies if len(bodies) >= n else None


async def _open_windows(settings: SenderSettings, *customers: str) -> None:
    db = Database(settings.database_url, "sender", pool_size=1)
    async with db.session() as session:
        for to in customers:
            await repo.touch_window(session, PHONE_NUMBER_ID, to, datetime.now(UTC))
    await db.dispose()


async def _read_as_stalled_replica(bus: Bus) -> str:
    """Read the next entry of `wa.outbound` as another replica that never handles it."""
    key = bus.key(names.WA_OUTBOUND)
    reply = await bus.redis.xreadgroup(names.GROUP_SENDER, STALLED, {key: ">"}, count=1)
    ((_stream, ((entry_id, _fields),)),) = reply
    return str(entry_id)


@asynccontextmanager
async def _sender(settings: SenderSettings) -> AsyncIterator[SenderContext]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        context = application.state.sender
        assert isinstance(context, SenderContext)
        yield context


@pytest.fixture
async def stream(bus: Bus, settings: SenderSettings) -> Bus:
    """A clean sender schema and the sender group on `wa.outbound`, before any sender runs."""
    await clean_schema(settings.database_url)
    key = bus.key(names.WA_OUTBOUND)
    await bus.redis.xgroup_create(key, names.GROUP_SENDER, id="0", mkstream=True)
    return bus


async def test_a_later_command_waits_for_an_earlier_one_another_replica_holds(
    stream: Bus, settings: SenderSettings, emulator: Emulator
) -> None:
    to = new_customer()
    await _open_windows(settings, to)
    first, second = command(to, text="first"), command(to, text="second")
    await stream.publish(first)
    held = await _read_as_stalled_replica(stream)
    await stream.publish(second)

    async with _sender(settings) as ctx:
        await wait_until(lambda: handled(ctx, second))
        # `second` is recorded; `first` is pending with a replica that has not recorded it.
        bound = await ctx.recorded.below()
        assert bound.held == {(PHONE_NUMBER_ID, to): position(held)}
        assert not bound.allows((PHONE_NUMBER_ID, to), position(held))
        # The stalled replica's entry is reclaimed after RECLAIM_IDLE_MS and recorded; only
        # then may `second` go. Without the bound `second` went out first.
        bodies = await wait_until(lambda: _bodies(emulator, to, 2), timeout=30)
    assert bodies == ["first", "second"]


async def test_an_entry_that_failed_on_its_own_holds_nobody_back(
    stream: Bus, settings: SenderSettings, emulator: Emulator
) -> None:
    failing, other = new_customer(), new_customer()
    await _open_windows(settings, failing, other)
    await stream.publish(command(failing, text="will fail"))
    held = await _read_as_stalled_replica(stream)
    failures = stream.key(names.failure_log(names.WA_OUTBOUND, names.GROUP_SENDER))
    await stream.redis.hset(failures, held, "DataError: value too long")
    await stream.publish(command(other, text="goes"))

    # Not reclaimed within the test: the failing entry stays pending with the other replica.
    patient = settings.model_copy(update={"reclaim_idle_ms": 600_000})
    async with _sender(patient) as ctx:
        assert await wait_until(lambda: _bodies(emulator, other, 1)) == ["goes"]
        bound = await ctx.recorded.below()
        assert bound.held == {}
        assert bound.allows((PHONE_NUMBER_ID, failing), position(held))
    key = stream.key(names.WA_OUTBOUND)
    pending = await stream.redis.xpending_range(key, names.GROUP_SENDER, "-", "+", 10)
    assert [(p["message_id"], p["consumer"]) for p in pending] == [(held, STALLED)]


async def test_an_entry_held_elsewhere_holds_back_its_own_customer_only(
    stream: Bus, settings: SenderSettings, emulator: Emulator
) -> None:
    """A replica that died holding a customer's message delays that customer until its entry
    is reclaimed, and nobody else."""
    held_back, other = new_customer(), new_customer()
    await _open_windows(settings, held_back, other)
    first = command(held_back, text="first")
    await stream.publish(first)
    held = await _read_as_stalled_replica(stream)
    second, others = command(held_back, text="second"), command(other, text="not held")
    await stream.publish(second)
    await stream.publish(others)

    patient = settings.model_copy(update={"reclaim_idle_ms": 600_000})
    async with _sender(patient) as ctx:
        assert await wait_until(lambda: _bodies(emulator, other, 1)) == ["not held"]
        await wait_until(lambda: handled(ctx, second))
        bound = await ctx.recorded.below()
        assert bound.held == {(PHONE_NUMBER_ID, held_back): position(held)}
        async with ctx.db.session() as session:
            rows = await session.execute(messages.select().where(messages.c.recipient == held_back))
            assert [(r.text, r.status) for r in rows] == [("second", "queued")]
    assert await emulator.messages(held_back) == []

    # The replica's entry is reclaimed by a sender that waits the usual idle time: the held
    # customer's messages then leave, in order.
    async with _sender(settings):
        bodies = await wait_until(lambda: _bodies(emulator, held_back, 2), timeout=30)
    assert bodies == ["first", "second"]


async def test_the_bound(stream: Bus, settings: SenderSettings) -> None:
    bound = RecordedBound(stream)
    key = stream.key(names.WA_OUTBOUND)
    failures = stream.key(names.failure_log(names.WA_OUTBOUND, names.GROUP_SENDER))
    assert await RecordedBound(Bus(stream.redis, prefix="nothing-here:")).below() == NO_LIMIT
    one, two = new_customer(), new_customer()
    customers = [one, two, one, two]
    ids = [await stream.publish(command(to, text=str(n))) for n, to in enumerate(customers)]
    assert all(ids)
    # Nothing handed out yet: nothing was recorded, so nothing before the first entry.
    assert await bound.below() == Bound((0, 1))

    held = [await _read_as_stalled_replica(stream) for _ in range(3)]
    assert held == ids[:3]
    handed_out = position(held[2])
    everyone = (handed_out[0], handed_out[1] + 1)
    # Pending, maybe being recorded: each holds back its own customer from its position.
    assert await bound.below() == Bound(
        everyone,
        {(PHONE_NUMBER_ID, one): position(held[0]), (PHONE_NUMBER_ID, two): position(held[1])},
    )
    await stream.redis.hset(failures, held[0], "ValueError: bad")  # failed on its own
    assert await bound.below() == Bound(
        everyone,
        {(PHONE_NUMBER_ID, one): position(held[2]), (PHONE_NUMBER_ID, two): position(held[1])},
    )
    await stream.redis.hset(failures, held[1], OUTAGE_MARK + "ConnectionError")  # comes back
    assert (await bound.below()).held[(PHONE_NUMBER_ID, two)] == position(held[1])
    bound.recorded([held[1]])  # this process recorded it; the acknowledgement follows
    assert await bound.below() == Bound(everyone, {(PHONE_NUMBER_ID, one): position(held[2])})
    await stream.redis.xack(key, names.GROUP_SENDER, held[2])
    assert await bound.below() == Bound(everyone)  # the last one handed out is recorded


async def test_an_entry_nobody_can_read_holds_everybody_back(stream: Bus) -> None:
    """Whose a pending entry that is not a valid event is cannot be known; an entry that is
    a valid event but not a command holds nobody back."""
    bound = RecordedBound(stream)
    key = stream.key(names.WA_OUTBOUND)
    other = command(new_customer(), text="later")
    not_a_command = TurnCompleted.create(
        TurnResult(
            turn_id=uuid.uuid4(),
            phone_number_id=PHONE_NUMBER_ID,
            wa_id=new_customer(),
            outcome=TurnOutcome.ANSWERED,
        ),
        producer="test",
    )
    await stream.redis.xadd(key, entry_fields(not_a_command))  # type: ignore[arg-type]
    await stream.redis.xadd(key, {"event_type": "outbound.message_requested", "body": "{"})
    await stream.publish(other)
    event, garbage = [await _read_as_stalled_replica(stream) for _ in range(2)]
    assert await bound.below() == Bound(position(garbage))
    # Once it failed on its own account (the next handling cannot parse it) it holds nobody.
    failures = stream.key(names.failure_log(names.WA_OUTBOUND, names.GROUP_SENDER))
    await stream.redis.hset(failures, garbage, "ValidationError: invalid JSON")
    ms, seq = position(garbage)
    assert await bound.below() == Bound((ms, seq + 1))
    assert position(event) < position(garbage)


async def test_a_deep_backlog_of_pending_entries_is_looked_at_only_so_far(stream: Bus) -> None:
    bound = RecordedBound(stream)
    key = stream.key(names.WA_OUTBOUND)
    to = new_customer()
    for n in range(MAX_SCAN + 5):
        await stream.publish(command(to, text=str(n)))
    reply = await stream.redis.xreadgroup(names.GROUP_SENDER, STALLED, {key: ">"}, count=10_000)
    ids = [str(entry_id) for entry_id, _ in reply[0][1]]
    assert len(ids) == MAX_SCAN + 5
    assert await bound.below() == Bound(
        position(ids[MAX_SCAN]), {(PHONE_NUMBER_ID, to): position(ids[0])}
    )
