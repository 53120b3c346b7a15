"""What every service process has: settings, database, bus, background workers, and the
HTTP surface (`/health`, `/health/ready`, `/metrics`) around them.

Observability wiring (see `baton_shared.observability`): the tracer provider is configured
from `OTEL_*` (export off by default), secret settings are registered for redaction from
logs, a `StreamSampler` worker keeps the lag/pending/DLQ gauges of the consumed streams
fresh, and readiness fails while a consumed group lags more than `READY_MAX_LAG` entries.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Protocol
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app

from baton_shared.db import Database, InboxPruner, OutboxRelay
from baton_shared.db.retention import Prune, Pruner
from baton_shared.observability import logs, tracing
from baton_shared.observability.config import ObservabilitySettings
from baton_shared.observability.http import ObservabilityMiddleware
from baton_shared.observability.sampler import StreamSampler
from baton_shared.settings import BaseServiceSettings
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.streams.consumer import Consumer, Handler
from baton_shared.streams.trim import AckTrimmer

log = logging.getLogger(__name__)


class Worker(Protocol):
    """A background loop that runs until `stop` is set."""

    running: bool

    async def run(self, stop: asyncio.Event) -> None: ...


class Runtime:
    """The shared resources of one service process.

    `outbox_grace_seconds`: for a service that publishes every event it stages itself
    (`publish_committed`), how long the outbox relay leaves a staged row to its committer
    (see `OutboxRelay`)."""

    def __init__(
        self,
        service: str,
        settings: BaseServiceSettings,
        schema: str,
        *,
        observability: ObservabilitySettings | None = None,
        outbox_grace_seconds: float = 0.0,
    ) -> None:
        self.service = service
        self.settings = settings
        self.observability = observability or ObservabilitySettings()
        tracing.configure_tracing(service)
        logs.redact(_secret_values(settings))
        if self.observability.log_bodies:
            logs.set_log_bodies(True)
        self.db = Database(settings.database_url, schema, pool_size=settings.db_pool_size)
        self.bus = Bus.from_url(
            settings.redis_url,
            prefix=settings.redis_prefix,
            maxlen=settings.stream_maxlen,
            dedupe_seconds=settings.publish_dedupe_seconds,
        )
        self.stop = asyncio.Event()
        self.consumers: list[Consumer] = []
        self.sampler = StreamSampler(
            self.bus,
            lambda: [(c.stream, c.group) for c in self.consumers],
            interval=self.observability.metrics_sample_seconds,
        )
        self.relay = OutboxRelay(self.db, self.bus, grace_seconds=outbox_grace_seconds)
        self.workers: list[Worker] = [
            self.relay,
            self.sampler,
            InboxPruner(self.db, retention=timedelta(days=settings.inbox_retention_days)).worker(),
        ]
        self.consumer_name = f"{service}-{socket.gethostname()}-{os.getpid()}"
        self._tasks: list[asyncio.Task[None]] = []

    def prune(self, rules: Sequence[Prune]) -> None:
        """Delete the service's own records older than `RETENTION_DAYS` every hour, by
        `rules` (nothing when it is 0: kept for ever)."""
        if days := self.settings.retention_days:
            pruner = Pruner(self.db, rules, retention=timedelta(days=days))
            self.workers.append(pruner.worker())

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
            log_events=self.observability.log_events,
        )
        self.workers.append(consumer)
        self.consumers.append(consumer)
        return consumer

    async def start(self) -> None:
        """Start every worker as a task, with a trimmer of the streams its consumers read
        (none is trimmed by length: see `streams.trim`)."""
        trimmed = {s for w in self.workers if isinstance(w, AckTrimmer) for s in w.streams}
        untrimmed = {
            w.stream
            for w in self.workers
            if isinstance(w, Consumer) and w.stream in names.ACK_TRIMMED
        } - trimmed
        if untrimmed:
            self.workers.append(AckTrimmer(self.bus, sorted(untrimmed)))
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
        tracing.flush()
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
        problems += [f"{_worker_name(w)} not running" for w in self.workers if not w.running]
        if self.consumers and not any(p.startswith("redis") for p in problems):
            problems += await self._lag_problems()
        return problems

    async def _lag_problems(self) -> list[str]:
        """Consumed groups lagging more than `READY_MAX_LAG` entries (a fresh sample)."""
        limit = self.observability.ready_max_lag
        try:
            stats = await asyncio.wait_for(self.sampler.sample(), timeout=2)
        except Exception as exc:
            return [f"stream sampling: {type(exc).__name__}"]
        return [
            f"lag {s.lag} > {limit} on {s.stream} for group {s.group}"
            for s in stats
            if s.lag is not None and s.lag > limit
        ]


def _worker_name(worker: Worker) -> str:
    """`Consumer wa.inbound/buffer` for consumers; else the worker's `name`, or its class."""
    stream, group = getattr(worker, "stream", None), getattr(worker, "group", None)
    name = type(worker).__name__
    if stream and group:
        return f"{name} {stream}/{group}"
    return str(getattr(worker, "name", None) or name)


def _secret_values(settings: BaseServiceSettings) -> list[str]:
    """Values that must never appear in a log line: secret settings and, outside development
    (where they are words like `postgres`), the passwords in the database and Redis URLs."""
    values: list[str] = []
    for name in settings.secret_fields():
        value = getattr(settings, name, None)
        reveal = getattr(value, "get_secret_value", None)  # pydantic SecretStr
        secret = str(reveal() if callable(reveal) else value or "")
        values.append(secret)
        # A list of secrets (`WA_APP_SECRET=old,new` while rotating): each one on its own too.
        values.extend(part.strip() for part in secret.split(",") if "," in secret)
    for url in () if settings.is_development else (settings.database_url, settings.redis_url):
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            values.append(password)
    return values


def build_app(
    runtime: Runtime,
    *,
    title: str,
    routers: Sequence[object] = (),
    on_start: Sequence[Callable[[], Awaitable[None]]] = (),
    on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
) -> FastAPI:
    """A FastAPI app that starts and stops the runtime's workers with the server.

    `on_start` hooks run before the workers start; `on_stop` hooks after every worker has
    stopped (so a client a worker uses is closed only once nothing can use it), even when
    stopping failed."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for hook in on_start:
            await hook()
        await runtime.start()
        log.info("%s started", runtime.service)
        try:
            yield
        finally:
            try:
                await runtime.close()
            finally:
                for stop_hook in on_stop:
                    await stop_hook()

    # FastAPI's native telemetry stays off: `ObservabilityMiddleware` is the one SERVER span
    # and latency metric per request (FastAPI's would add its own server span plus operation
    # spans, each request, whenever a global tracer provider is installed).
    app = FastAPI(
        title=title,
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.add_middleware(ObservabilityMiddleware)
    for router in routers:
        app.include_router(router)  # type: ignore[arg-type]

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "service": runtime.service}

    @app.get("/health/ready", tags=["ops"])
    async def ready() -> JSONResponse:
        """Readiness: PostgreSQL and Redis answer, every worker runs, no consumed group lags
        more than `READY_MAX_LAG` entries; otherwise 503 with the reasons."""
        problems = await runtime.readiness()
        if problems:
            return JSONResponse({"status": "not ready", "reasons": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    app.mount("/metrics", make_asgi_app())
    return app
