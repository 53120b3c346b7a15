"""Buffer replicas on hosts whose clocks disagree read one clock: Redis's."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from baton_buffer.clock import RedisClock
from baton_buffer.main import build_runtime
from baton_buffer.settings import BufferSettings

pytestmark = pytest.mark.integration

# Far above what a round trip on loopback adds (the offset is known to within half of one),
# far below the skews the test gives the hosts.
AGREE = 0.5


async def redis_now(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return seconds + micros / 1_000_000


async def test_replicas_with_skewed_host_clocks_agree_after_measuring(redis: Redis) -> None:
    ahead = RedisClock(redis, local=lambda: time.time() + 7.0)
    behind = RedisClock(redis, local=lambda: time.time() - 3.0)
    assert abs(ahead() - behind()) > 9  # each host's own clock, before measuring

    await asyncio.gather(ahead.start(), behind.start())

    assert ahead.synced
    assert behind.synced
    assert abs(ahead() - behind()) < AGREE
    assert abs(ahead() - await redis_now(redis)) < AGREE


async def test_the_clock_keeps_measuring_and_survives_a_missing_redis() -> None:
    gone = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    clock = RedisClock(gone, every=0.01, local=lambda: 42.0)
    await clock.start()  # logs, does not raise: the buffer starts with its host's clock
    assert (clock.synced, clock()) == (False, 42.0)

    stop = asyncio.Event()
    worker = asyncio.create_task(clock.run(stop))
    stop.set()
    await asyncio.wait_for(worker, timeout=10)
    assert not clock.running
    await gone.aclose()


async def test_the_service_reads_redis_clock(database_url: str, redis_url: str) -> None:
    settings = BufferSettings(
        baton_env="test", database_url=database_url, redis_url=redis_url, redis_prefix="clock:"
    )
    runtime, ctx, clock = build_runtime(settings)
    try:
        assert ctx.clock is clock
        assert clock in runtime.workers
    finally:
        await runtime.bus.aclose()
        await runtime.db.dispose()
