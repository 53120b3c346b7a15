"""What every service process has: settings, database, bus, background workers, and the
HTTP surface (`/health`, `/health/ready`, `/metrics`) around them."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app

from baton_shared.db import Database, OutboxRelay
from baton_shared.settings import BaseServiceSettings
from baton_shared.streams.bus import Bus
from baton_shared.streams.consumer import Consumer, Handler

log = logging.getLogger(__name__)


class Worker(Protocol):
    """A background loop that runs until `stop` is set."""

    running: bool

    async def run(self, stop: asyncio.Event) -> None: ...


class Runtime:
    """The shared resources of one service process."""

    def __init__(self, service: str, settings: BaseServiceSettings, schema: str) -> None:
        self.service = service
        self.settings = settings
        self.db = Database(settings.database_url, schema)
        self.bus = Bus.from_url(
            settings.redis_url, prefix=settings.redis_prefix, maxlen=settings.stream_maxlen
        )
        self.stop = asyncio.Event()
        self.workers: list[Worker] = [OutboxRelay(self.db, self.bus)]
        self.consumer_name = f"{service}-{socket.gethostname()}-{os.getpid()}"
        self._tasks: list[asyncio.Task[None]] = []

    def consume(
        self, stream: str, group: str, handler: Handler, *, concurrency: int = 1
    ) -> Consumer:
        """Register a consumer of `stream` in `group` that runs `handler` for each event.

        `concurrency` > 1 handles that many entries at once (see `Consumer`)."""
        s = self.settings
        consumer = Consumer(
            self.bus,
            stream=stream,
            group=group,
            name=self.consumer_name,
            handler=handler,
            batch=s.consumer_batch,
            block_ms=s.consumer_block_ms,
            reclaim_idle_ms=s.reclaim_idle_ms,
            max_deliveries=s.max_deliveries,
            concurrency=concurrency,
        )
        self.workers.append(consumer)
        return consumer

    async def start(self) -> None:
        """Start every worker as a task."""
        self.stop.clear()
        self._tasks = [asyncio.create_task(w.run(self.stop)) for w in self.workers]

    async def close(self) -> None:
        """Stop workers (letting each finish its current entry), then close connections."""
        self.stop.set()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.db.dispose()
        await self.bus.aclose()

    async def readiness(self) -> list[str]:
        """Reasons the service is not ready; empty when it is."""
        problems: list[str] = []
        try:
            await asyncio.wait_for(self.db.ping(), timeout=2)
        except Exception as exc:
            problems.append(f"postgresql: {type(exc).__name__}")
        try:
            await asyncio.wait_for(self.bus.redis.ping(), timeout=2)
        except Exception as exc:
            problems.append(f"redis: {type(exc).__name__}")
        problems += [f"{type(w).__name__} not running" for w in self.workers if not w.running]
        return problems


def build_app(
    runtime: Runtime,
    *,
    title: str,
    routers: Sequence[object] = (),
    on_start: Sequence[Callable[[], Awaitable[None]]] = (),
) -> FastAPI:
    """A FastAPI app that starts and stops the runtime's workers with the server."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for hook in on_start:
            await hook()
        await runtime.start()
        log.info("%s started", runtime.service)
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(title=title, lifespan=lifespan)
    for router in routers:
        app.include_router(router)  # type: ignore[arg-type]

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "service": runtime.service}

    @app.get("/health/ready", tags=["ops"])
    async def ready() -> JSONResponse:
        """Readiness: PostgreSQL and Redis answer and every worker runs."""
        problems = await runtime.readiness()
        if problems:
            return JSONResponse({"status": "not ready", "reasons": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    app.mount("/metrics", make_asgi_app())
    return app
