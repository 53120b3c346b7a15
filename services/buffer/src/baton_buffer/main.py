"""Wiring of the buffer service: runtime, consumers, ticker, HTTP surface, command line."""

from __future__ import annotations

from fastapi import FastAPI

from baton_buffer import consumer
from baton_buffer.clock import RedisClock
from baton_buffer.context import BufferContext
from baton_buffer.db.models import RETENTION, SCHEMA
from baton_buffer.settings import BufferSettings
from baton_buffer.ticker import Ticker
from baton_buffer.timers import Timers
from baton_shared.cli import run_cli
from baton_shared.runtime import Runtime, build_app

SELF_PUBLISHED_GRACE_SECONDS = 5.0


def build_runtime(settings: BufferSettings) -> tuple[Runtime, BufferContext, RedisClock]:
    """The runtime with the buffer's consumers, ticker and clock registered."""
    # Every event of the buffer (`TurnReady`) is published by the release that staged it; the
    # relay only picks up what a crash or a Redis error left behind.
    runtime = Runtime("buffer", settings, SCHEMA, outbox_grace_seconds=SELF_PUBLISHED_GRACE_SECONDS)
    timers = Timers(runtime.bus, lease_seconds=settings.claim_lease_seconds)
    clock = RedisClock(runtime.bus.redis)
    ctx = BufferContext.from_settings(runtime.db, timers, settings, clock=clock)
    runtime.workers.append(clock)
    consumer.register(runtime, ctx, settings)
    runtime.workers.append(
        Ticker(
            ctx,
            tick_seconds=settings.tick_ms / 1000,
            batch=settings.release_batch,
            concurrency=settings.release_concurrency,
            chunk=settings.release_chunk,
            recovery_seconds=settings.recovery_seconds,
        )
    )
    runtime.prune(RETENTION)
    return runtime, ctx, clock


def create_app(settings: BufferSettings) -> FastAPI:
    """The buffer's ASGI app: `/health`, `/health/ready`, `/metrics`, and its workers."""
    runtime, _, clock = build_runtime(settings)
    return build_app(runtime, title="Baton buffer", on_start=[clock.start])


def cli(argv: list[str] | None = None) -> int:
    """`baton-buffer serve | migrate`."""
    return run_cli(
        "buffer",
        settings_cls=BufferSettings,
        create_app=create_app,
        migrations="baton_buffer.db.migrations",
        schema=SCHEMA,
        port=lambda s: s.port,
        argv=argv,
    )
