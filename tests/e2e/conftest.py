"""The whole stack as separate processes, on free ports, a private database and prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from baton_devtools.databases import private_database
from baton_devtools.infra import Infra
from baton_devtools.supervisor import Stack, start_stack
from baton_shared.testing import delete_prefix, new_prefix

E2E_ENV = {
    "BATON_ENV": "test",
    "BUFFER_QUIET_SECONDS": "0",
    "BUFFER_MAX_SECONDS": "0",
    "WA_APP_SECRET": "e2e-app-secret",
    "WA_VERIFY_TOKEN": "e2e-verify-token",
    "WA_ACCESS_TOKEN": "e2e-access-token",
    # Empty: the supervisor points the agent at the Gemini emulator and the sender at the
    # WhatsApp emulator, whatever the developer's own environment says.
    "GOOGLE_API_KEY": "",
    "WA_GRAPH_URL": "",
    "BATON_BOOTSTRAP_ADMIN_TOKEN": "e2e-admin-token-0123456789abcdef",
    # A turn's model work is bounded (AGENT_TURN_TIMEOUT_SECONDS) below the reclaim time, so
    # a turn still running is never taken over; both well above MODEL_DELAY_MS.
    "RECLAIM_IDLE_MS": "4000",
    "AGENT_TURN_TIMEOUT_SECONDS": "3",
}


@pytest.fixture(scope="session")
async def stack(
    infra: Infra, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Every service and both emulators, started like `make run` starts them, once per run.

    Tests share it, so each test uses customers (wa_ids) of its own.

    The stack gets a database of its own: outbox rows other tests left behind must not be
    published into its streams.
    """
    data_dir: Path = tmp_path_factory.mktemp("stack")
    prefix = new_prefix()
    try:
        with private_database(infra.database_url) as database_url:
            env = E2E_ENV | {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "REDIS_PREFIX": prefix,
            }
            async with start_stack(env, data_dir) as running:
                yield running
    finally:  # once every process has stopped: nothing writes under the prefix any more
        client = Redis.from_url(redis_url)
        await delete_prefix(client, prefix)
        await client.aclose()
