"""The buffer as a running service: events in on `wa.inbound`, turns out on `conv.turns`."""

from __future__ import annotations

import httpx
import pytest

from baton_buffer.main import create_app
from baton_buffer.settings import BufferSettings
from baton_shared.events import TurnReady, parse_event
from baton_shared.streams import names
from baton_shared.testing import wait_until

pytestmark = pytest.mark.integration


def settings(database_url: str, redis_url: str, prefix: str, **extra: object) -> BufferSettings:
    return BufferSettings.model_validate(
        {
            "BATON_ENV": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": prefix,
            "CONSUMER_BLOCK_MS": 50,
            "BUFFER_QUIET_SECONDS": 0,
            "BUFFER_TICK_MS": 20,
        }
        | extra
    )


async def stream_turns(bus) -> list[TurnReady]:
    entries = await bus.redis.xrange(bus.key(names.CONV_TURNS))
    events = [parse_event(f["event_type"], int(f["schema_version"]), f["body"]) for _, f in entries]
    return [e for e in events if isinstance(e, TurnReady)]


async def test_message_in_turn_out_then_next_turn_after_completion(
    database_url, redis_url, prefix, bus, conv
) -> None:
    app = create_app(settings(database_url, redis_url, prefix))

    async def turns() -> list[TurnReady]:
        return [t for t in await stream_turns(bus) if t.conversation_id == conv.id]

    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        async with client:
            ready = await wait_until(lambda: client.get("/health/ready"), what="ready")
            assert ready.status_code == 200
            first_message = conv.message(1)
            await bus.publish(first_message)
            [first] = await wait_until(turns, what="first turn")
            assert first.payload.sequence == 1
            assert [m.message_id for m in first.payload.messages] == [
                first_message.payload.message_id
            ]
            assert first.correlation_id == first_message.correlation_id
            assert first.causation_id == first_message.event_id

            await bus.publish(conv.message(2))  # joins the next turn: turn 1 is in flight
            await bus.publish(conv.completed(first))
            second = await wait_until(lambda: _nth(turns, 2), what="second turn")
            assert second.payload.sequence == 2
            assert [m.text for m in second.payload.messages] == ["m2"]
            metrics = await client.get("/metrics/")
            assert "baton_buffer_turns_released_total" in metrics.text


async def _nth(probe, n: int) -> TurnReady | None:
    found = await probe()
    return found[n - 1] if len(found) >= n else None


async def test_two_running_replicas_release_each_burst_once(
    database_url, redis_url, prefix, bus, new_conv
) -> None:
    # The third message closes each burst (quiet and max time are far away), so the
    # expected turns do not depend on how fast this machine is.
    options = {"BUFFER_MAX_MESSAGES": 3, "BUFFER_QUIET_SECONDS": 600, "BUFFER_MAX_SECONDS": 600}
    apps = [create_app(settings(database_url, redis_url, prefix, **options)) for _ in range(2)]
    convs = [new_conv() for _ in range(20)]
    ids = {c.id for c in convs}
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        for n in range(3):
            for conv in convs:
                await bus.publish(conv.message(n, ts=-n))  # timestamps run backwards
                await bus.publish(conv.message(n, ts=-n))  # and every event twice

        async def all_released() -> list[TurnReady]:
            found = [t for t in await stream_turns(bus) if t.conversation_id in ids]
            return found if len(found) >= len(convs) else []

        await wait_until(all_released, timeout=30, what="every burst released")
    released = [t for t in await stream_turns(bus) if t.conversation_id in ids]
    assert sorted(t.conversation_id or "" for t in released) == sorted(ids)
    for turn in released:
        assert [m.text for m in turn.payload.messages] == ["m2", "m1", "m0"]
        assert turn.payload.closed_by == "max_messages"
