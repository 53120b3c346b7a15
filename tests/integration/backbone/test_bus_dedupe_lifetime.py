"""Published event ids are remembered for the bus's dedupe lifetime, not longer."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from baton_shared.events import PlatformError, PlatformErrorReceived, PlatformErrors
from baton_shared.streams.bus import Bus

pytestmark = pytest.mark.integration


async def test_a_published_event_id_is_remembered_for_the_dedupe_lifetime(
    redis: Redis, prefix: str
) -> None:
    bus = Bus(redis, prefix=prefix, dedupe_seconds=120)
    event = PlatformErrorReceived.create(
        PlatformErrors(phone_number_id="1", errors=[PlatformError(code=1)]), producer="test"
    )
    assert await bus.publish(event) is not None
    assert await bus.publish(event) is None  # the repeat is dropped
    markers = [key async for key in redis.scan_iter(match=f"{prefix}*{event.event_id}")]
    assert len(markers) == 1
    assert 0 < await redis.ttl(markers[0]) <= 120
