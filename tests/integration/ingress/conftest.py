"""Ingress in-process on the run's PostgreSQL and Redis: signed posts, stream reads, fixtures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from baton_ingress.api.front import IngressFront
from baton_ingress.db.models import webhooks
from baton_ingress.main import create_app
from baton_ingress.settings import IngressSettings
from baton_ingress.signature import sign
from baton_shared.db import Database
from baton_shared.events import Event, parse_event
from baton_shared.streams.bus import Bus

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks"
SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"


def make_settings(database_url: str, redis_url: str, prefix: str, **extra: Any) -> IngressSettings:
    values: dict[str, Any] = {
        "BATON_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "WA_APP_SECRET": f"old-secret,{SECRET}",
        "WA_VERIFY_TOKEN": VERIFY_TOKEN,
        "CONSUMER_BLOCK_MS": 50,
        "RECLAIM_IDLE_MS": 60_000,
    } | extra
    return IngressSettings(**values)


class Harness:
    """One test's ingress: apps on its private Redis prefix, bodies tagged to be unique."""

    def __init__(self, database_url: str, redis_url: str, bus: Bus) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.bus = bus
        self.tag = uuid.uuid4().hex[:12]

    def settings(self, **extra: Any) -> IngressSettings:
        return make_settings(self.database_url, self.redis_url, self.bus.prefix, **extra)

    def body(self, name: str) -> bytes:
        """A fixture's raw bytes with every `wamid.` made unique to this test."""
        raw = (FIXTURES / f"{name}.json").read_bytes()
        return raw.replace(b"wamid.", f"wamid.{self.tag}-".encode())

    @asynccontextmanager
    async def client(
        self, settings: IngressSettings | None = None, *, run_worker: bool = True
    ) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client on a started app (workers running unless `run_worker=False`), served
        as `baton-ingress serve` serves it (behind `IngressFront`)."""
        settings = settings or self.settings()
        app = create_app(settings, run_worker=run_worker)
        served = app if settings.role == "worker" else IngressFront(app)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=served)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as c:
                yield c

    async def post(
        self, client: httpx.AsyncClient, body: bytes, *, secret: str = SECRET
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)}
        return await client.post("/webhook", content=body, headers=headers)

    async def events(self, stream: str) -> list[Event]:
        """Events on `stream` (this test's prefix) that concern this test's messages."""
        entries = await self.bus.redis.xrange(self.bus.key(stream))
        return [
            parse_event(f["event_type"], int(f["schema_version"]), f["body"])
            for _, f in entries
            if self.tag in f["body"] or f["event_type"] == "inbound.platform_error_received"
        ]

    async def archived(self, body: bytes) -> int:
        """How many archive rows hold exactly `body`."""
        db = Database(self.database_url, "ingress", pool_size=1)
        try:
            async with db.session() as session:
                stmt = select(func.count()).where(webhooks.c.body == body.decode())
                return int(await session.scalar(stmt) or 0)
        finally:
            await db.dispose()


@pytest.fixture
def harness(database_url: str, redis_url: str, bus: Bus) -> Harness:
    """This test's ingress harness."""
    return Harness(database_url, redis_url, bus)
