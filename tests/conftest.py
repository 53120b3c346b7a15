"""Fixtures for every suite: a private database (all service schemas migrated) and a private
Redis key prefix per test run, on real PostgreSQL and Redis found like `make run` finds them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from baton_devtools import infra as infra_mod
from baton_devtools.databases import private_database
from baton_shared.streams.bus import Bus
from baton_shared.testing import delete_prefix, new_prefix

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def infra() -> Iterator[infra_mod.Infra]:
    """PostgreSQL and Redis: from the environment, the local servers, or embedded ones."""
    found = infra_mod.ensure_infra(ROOT / ".data" / "test-infra")
    yield found
    found.stop()


@pytest.fixture(scope="session")
def database_url(infra: infra_mod.Infra) -> Iterator[str]:
    """A database private to this test run, every service schema migrated; dropped after."""
    with private_database(infra.database_url) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(infra: infra_mod.Infra) -> str:
    """The Redis URL of this run."""
    return infra.redis_url


@pytest.fixture
def prefix() -> str:
    """A Redis key prefix private to one test."""
    return new_prefix()


@pytest.fixture
async def redis(redis_url: str, prefix: str) -> AsyncIterator[Redis]:
    """A Redis client; every key under this test's prefix is deleted afterwards."""
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await delete_prefix(client, prefix)
    await client.aclose()


@pytest.fixture
async def bus(redis: Redis, prefix: str) -> Bus:
    """A bus on this test's prefix, with short trimming so tests see real MAXLEN behaviour."""
    return Bus(redis, prefix=prefix, maxlen=10_000)
