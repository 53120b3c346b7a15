"""Rate limits live in Redis, so every replica shares them."""

from __future__ import annotations

import asyncio

import pytest

from baton_sender import keys
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
    number = bus.key(keys.number_bucket("1"))
    slot = await bus.redis.get(number)
    assert await limiter.take("1", "c") > 0  # the customer must wait: the number's slot kept
    assert await bus.redis.get(number) == slot


async def test_reserve_lines_permits_up_in_slots_and_refuses_beyond_max_wait(bus: Bus) -> None:
    limiter = RateLimiter(bus, number_mps=10, customer_per_minute=6000, customer_burst=100)
    assert limiter.number_burst == 1
    first = await limiter.reserve("1", None, 1.0)
    assert first.reserved
    assert first.wait == 0
    second = await limiter.reserve("1", None, 1.0)  # taken now, due in ~1/10 s
    assert second.reserved
    assert 0 < second.wait <= 0.1
    third = await limiter.reserve("1", None, 0.25)
    assert third.reserved
    assert second.wait < third.wait <= 0.2
    refused = await limiter.reserve("1", None, 0.0)  # nothing taken when refused
    assert not refused.reserved
    assert refused.wait > 0
    again = await limiter.reserve("1", None, 0.0)
    assert not again.reserved
    assert again.wait <= refused.wait + 0.01


async def test_concurrent_reservations_get_distinct_slots(bus: Bus) -> None:
    limiter = RateLimiter(bus, number_mps=100, customer_per_minute=6000, customer_burst=100)
    permits = await asyncio.gather(*(limiter.reserve("1", None, 1.0) for _ in range(30)))
    assert all(p.reserved for p in permits)
    waits = sorted(p.wait for p in permits)
    assert waits[:10] == [0.0] * 10  # the burst (a tenth of a second at 100/s)
    assert waits[-1] >= 0.19  # the other 20 are spread over ~0.2 s, not all at once


async def test_reserve_reports_a_token_error_pause_and_takes_nothing(bus: Bus) -> None:
    limiter = RateLimiter(bus, number_mps=10, customer_per_minute=6000, customer_burst=100)
    await bus.redis.set(bus.key(keys.auth_pause()), "1", px=5000)
    permit = await limiter.reserve("1", "c", 1.0)
    assert not permit.reserved
    assert 0 < permit.paused <= 5
    assert await bus.redis.exists(bus.key(keys.number_bucket("1"))) == 0


async def test_a_number_pause_holds_every_send_from_that_number_only(bus: Bus) -> None:
    # After WhatsApp's 130429 (the number over its throughput) every replica holds the number.
    one = RateLimiter(bus, number_mps=1000, customer_per_minute=6000, customer_burst=45)
    two = RateLimiter(bus, number_mps=1000, customer_per_minute=6000, customer_burst=45)
    await one.pause_number("1", 30)

    permit = await two.reserve("1", "c", 1.0)
    assert (permit.reserved, permit.token_pause) == (False, False)
    assert 25 < permit.paused <= 30
    assert await two.take("1", None) > 25  # typing indicators and receipts wait too
    assert (await two.reserve("2", "c", 1.0)).reserved  # other numbers go on

    await bus.redis.set(bus.key(keys.auth_pause()), "1", px=60_000)
    token = await two.reserve("1", "c", 1.0)  # a token error pauses all, and says so
    assert token.token_pause
    assert token.paused > 30


async def test_a_number_with_a_rate_of_its_own(bus: Bus) -> None:
    # A coexistence number (shared with the WhatsApp Business app) is held at 20/s.
    limiter = RateLimiter(
        bus,
        number_mps=1000,
        customer_per_minute=6000,
        customer_burst=45,
        number_mps_by_number={"coexisting": 20},
    )
    assert limiter.rate_of("coexisting") == (20, 2)
    assert limiter.rate_of("other") == (1000, 100)
    waits = [await limiter.take("coexisting", None) for _ in range(3)]
    assert waits[:2] == [0, 0]
    assert 0 < waits[2] <= 0.05  # the third waits for its slot, 1/20 s apart
    assert [await limiter.take("other", None) for _ in range(3)] == [0, 0, 0]


async def test_a_message_held_by_its_customer_takes_no_slot_of_the_number(bus: Bus) -> None:
    """A message waiting on its customer's pacing is refused with that wait and reserves
    nothing: taking the number's slot free now let messages so held go together when their
    customers allowed them (five at once where the number allows one per 100 ms), and taking
    the number's slot of that later moment would hold every other customer back until it."""
    limiter = RateLimiter(bus, number_mps=10, customer_per_minute=60, customer_burst=1)
    assert (await limiter.reserve("1", "alice", 1.0)).wait == 0
    number = bus.key(keys.number_bucket("1"))
    slot = await bus.redis.get(number)
    held = await limiter.reserve("1", "alice", 1.0)  # one per second for alice
    assert not held.reserved
    assert 0.9 < held.wait <= 1.0
    assert await bus.redis.get(number) == slot  # the number's slots are untouched
    bob = await limiter.reserve("1", "bob", 1.0)  # the number's next slot, 1/10 s on
    assert bob.reserved
    assert bob.wait <= 0.1


async def test_a_limit_far_ahead_of_the_clock_is_read_as_its_furthest(bus: Bus) -> None:
    """Redis's clock stepped back an hour (or a key was written by hand): the number does not
    wait an hour, only as long as a full burst and the reservations ahead could make it."""
    limiter = RateLimiter(bus, number_mps=10, customer_per_minute=6000, customer_burst=100)
    seconds, micros = await bus.redis.time()
    an_hour_ahead = seconds * 1000 + micros / 1000 + 3_600_000
    await bus.redis.set(bus.key(keys.number_bucket("1")), f"{an_hour_ahead:.3f}", px=60_000)
    permit = await limiter.reserve("1", "c", 1.0)
    assert not permit.reserved
    assert permit.wait <= 2.1  # the interval (0.1 s) and the look-ahead (2 s)
