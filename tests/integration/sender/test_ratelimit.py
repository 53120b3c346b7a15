"""Rate limits live in Redis, so every replica shares them."""

from __future__ import annotations

import pytest

from baton_sender.ratelimit import RateLimiter
from baton_shared.streams.bus import Bus

pytestmark = pytest.mark.integration


async def test_business_number_bucket_allows_its_burst_then_asks_to_wait(bus: Bus) -> None:
    limiter = RateLimiter(bus, number_mps=50, customer_per_minute=6000, customer_burst=45)
    assert limiter.number_burst == 5  # a tenth of a second
    waits = [await limiter.take("1", None) for _ in range(6)]
    assert waits[:5] == [0, 0, 0, 0, 0]
    assert 0 < waits[5] <= 0.03


async def test_customer_pacing_is_shared_between_replicas(bus: Bus) -> None:
    one = RateLimiter(bus, number_mps=1000, customer_per_minute=10, customer_burst=2)
    two = RateLimiter(bus, number_mps=1000, customer_per_minute=10, customer_burst=2)
    assert await one.take("1", "c") == 0
    assert await two.take("1", "c") == 0
    wait = await one.take("1", "c")
    assert 0 < wait <= 6  # one message per 6 s after the burst
    assert await two.take("1", "other") == 0  # other customers are not held up


async def test_a_refused_permit_spends_no_token(bus: Bus) -> None:
    limiter = RateLimiter(bus, number_mps=1000, customer_per_minute=1, customer_burst=1)
    assert await limiter.take("1", "c") == 0
    assert await limiter.take("1", "c") > 0  # customer bucket empty: number token kept
    tokens = await bus.redis.hget(bus.key("sender:rate:number:1"), "tokens")
    assert float(tokens or 0) >= 98  # (burst: 100 at 1,000/s)
