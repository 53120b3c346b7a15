"""The cycle collector is settled once a served app has started: everything built by then is
frozen out of full collections (their pauses were the ingress benchmark's worst latencies),
and the agent's young-generation threshold applies."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from fastapi import FastAPI

from baton_shared.cli import SettlingServer
from baton_shared.testing import wait_until


@pytest.fixture
def collector() -> Iterator[None]:
    """Put the test process's collector back as it was."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def test_settled_after_the_app_started_and_before_serving(collector: None) -> None:
    seen: list[int] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        seen.append(gc.get_freeze_count())  # the app's own start-up: nothing frozen yet
        yield

    app = FastAPI(lifespan=lifespan)
    gc.unfreeze()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    server = SettlingServer(config, gc_young_threshold=12_345)
    serving = asyncio.create_task(server.serve())
    try:

        async def started() -> bool:
            return server.started

        await wait_until(started, what="server started")
        assert seen == [0]
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == 12_345
    finally:
        server.should_exit = True
        await serving
