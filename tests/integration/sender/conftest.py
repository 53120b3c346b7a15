"""Sender fixtures: the WhatsApp emulator served over real HTTP, and a sender on a clean schema."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from baton_devtools.serving import serving
from baton_devtools.whatsapp.app import create_app as create_emulator
from baton_devtools.whatsapp.settings import WaEmulatorSettings
from baton_devtools.whatsapp.state import WaState
from baton_sender.context import SenderContext
from baton_sender.db import repo
from baton_sender.main import create_app
from baton_sender.settings import SenderSettings
from baton_shared.db.tables import inbox
from baton_shared.events import (
    Author,
    Event,
    InboundMessage,
    MessageReceived,
    MessageRequested,
    MessageType,
    OutboundCommand,
    OutboundKind,
    parse_event,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus

TOKEN = "test-access-token"
PHONE_NUMBER_ID = "420123456789012"


@dataclass
class Emulator:
    """The WhatsApp emulator running on a free local port."""

    url: str
    state: WaState
    http: httpx.AsyncClient

    async def messages(self, to: str) -> list[dict[str, Any]]:
        """Sends the emulator accepted for `to`, oldest first."""
        response = await self.http.get("/_emulator/messages", params={"to": to})
        return list(response.json())

    async def fault(self, **rule: Any) -> None:
        """Inject a fault (`POST /_emulator/faults`)."""
        response = await self.http.post("/_emulator/faults", json=rule)
        response.raise_for_status()

    async def upload(self, data: bytes, mime_type: str) -> str:
        """Upload media as the business does before sending it by id; its media id."""
        response = await self.http.post(
            f"/v21.0/{PHONE_NUMBER_ID}/media",
            data={"messaging_product": "whatsapp"},
            files={"file": ("upload", data, mime_type)},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        response.raise_for_status()
        return str(response.json()["id"])


@pytest.fixture(scope="session")
async def emulator() -> AsyncIterator[Emulator]:
    """The emulator app on 127.0.0.1:<free port>, status webhooks off (no ingress here)."""
    settings = WaEmulatorSettings(
        wa_access_token=TOKEN, ingress_webhook_url="http://127.0.0.1:9/webhook"
    )
    app: FastAPI = create_emulator(settings)
    app.state.emulator.config = app.state.emulator.config.model_copy(update={"statuses": []})
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield Emulator(url, app.state.emulator, http)


def new_customer() -> str:
    """A customer wa_id no other test uses."""
    return "44" + "".join(random.choices("0123456789", k=10))


@pytest.fixture
def settings(database_url: str, redis_url: str, prefix: str, emulator: Emulator) -> SenderSettings:
    """Sender settings for one test: private Redis prefix, the emulator, fast retries."""
    return SenderSettings(
        baton_env="test",
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=prefix,
        wa_graph_url=emulator.url,
        wa_access_token=TOKEN,
        consumer_block_ms=50,
        reclaim_idle_ms=2000,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
        window_grace_seconds=0,
        auth_pause_seconds=30,
        claim_lease_seconds=4,
    )


async def clean_schema(database_url: str) -> None:
    """Empty the sender's tables, so one test's leftovers never reach another's dispatcher."""
    from baton_shared.db import Database

    db = Database(database_url, "sender", pool_size=1)
    async with db.session() as session:
        await session.execute(text("TRUNCATE messages, windows, inbox, outbox"))
    await db.dispose()


@pytest.fixture
async def app(settings: SenderSettings, redis: Any) -> AsyncIterator[FastAPI]:
    """The sender app with its workers running (consumers, dispatcher, outbox relay)."""
    await clean_schema(settings.database_url)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def ctx(app: FastAPI) -> SenderContext:
    """The running sender's context."""
    context = app.state.sender
    assert isinstance(context, SenderContext)
    return context


def command(
    to: str,
    *,
    kind: OutboundKind = OutboundKind.TEXT,
    author: Author = Author.OPERATOR,
    text: str | None = "hello",
    command_id: str | None = None,
    **fields: Any,
) -> MessageRequested:
    """A MessageRequested event to `to`."""
    payload = OutboundCommand(
        command_id=command_id or str(uuid.uuid4()),
        phone_number_id=PHONE_NUMBER_ID,
        to=to,
        author=author,
        kind=kind,
        text=text,
        **fields,
    )
    return MessageRequested.create(payload, producer="test")


def inbound(to: str, *, at: datetime | None = None) -> MessageReceived:
    """A customer message from `to`, which opens the service window."""
    payload = InboundMessage(
        message_id=f"wamid.in.{uuid.uuid4().hex}",
        phone_number_id=PHONE_NUMBER_ID,
        wa_id=to,
        timestamp=at or datetime.now(UTC),
        type=MessageType.TEXT,
        text="hi",
    )
    return MessageReceived.create(payload, producer="test")


async def results(bus: Bus, command_id: str | None = None) -> list[Event]:
    """Events on wa.outbound.results (for one command), oldest first."""
    entries = await bus.redis.xrange(bus.key(names.WA_OUTBOUND_RESULTS))
    events = [
        parse_event(f["event_type"], int(f["schema_version"]), f["body"]) for _id, f in entries
    ]
    return [
        e
        for e in events
        if command_id is None or getattr(e.payload, "command_id", None) == command_id
    ]


async def open_window(ctx: SenderContext, to: str, at: datetime | None = None) -> None:
    """Record that `to` just wrote to the business (as the wa.inbound consumer would)."""
    async with ctx.db.session() as session:
        await repo.touch_window(session, PHONE_NUMBER_ID, to, at or datetime.now(UTC))


async def message_rows(ctx: SenderContext, command_id: str) -> list[Any]:
    """The recorded message rows of one command."""
    async with ctx.db.session() as session:
        return await repo.get_by_command(session, command_id)


async def handled(ctx: SenderContext, event: Event) -> bool:
    """Whether the sender's inbox has recorded `event` (its handler committed)."""
    async with ctx.db.session() as session:
        found = await session.execute(inbox.select().where(inbox.c.event_id == event.event_id))
        return found.first() is not None
