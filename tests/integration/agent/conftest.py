"""The agent in-process against real PostgreSQL and Redis, its model the Gemini emulator."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from baton_agent.context import AgentContext
from baton_agent.main import create_app
from baton_agent.settings import AgentSettings
from baton_devtools.gemini.app import create_app as create_gemini
from baton_devtools.gemini.settings import GeminiEmulatorSettings
from baton_devtools.serving import ServerThread
from baton_shared.events import (
    Event,
    InboundMessage,
    MessageType,
    Turn,
    TurnCloseReason,
    TurnReady,
    conversation_id_for,
    parse_event,
)
from baton_shared.streams.bus import Bus

PHONE_NUMBER_ID = "1000200030004"


@dataclass
class Gemini:
    """The running emulator and a client of its control API."""

    url: str

    async def fault(self, **fault: Any) -> None:
        """Inject a fault (status, count, delay_ms) into the next model calls."""
        async with httpx.AsyncClient(base_url=self.url) as client:
            (await client.post("/_emulator/faults", json=fault)).raise_for_status()

    async def requests(self) -> list[dict[str, Any]]:
        """Model calls received since the test started."""
        async with httpx.AsyncClient(base_url=self.url) as client:
            return list((await client.get("/_emulator/requests")).json())

    async def reset(self) -> None:
        """Forget requests and faults."""
        async with httpx.AsyncClient(base_url=self.url) as client:
            await client.delete("/_emulator/requests")
            await client.delete("/_emulator/faults")


@pytest.fixture(scope="session")
def gemini_url() -> Iterator[str]:
    """The Gemini API emulator, served on a free port for the whole run."""
    with ServerThread(create_gemini(GeminiEmulatorSettings())) as server:
        yield server.url


@pytest.fixture
async def gemini(gemini_url: str) -> AsyncIterator[Gemini]:
    """The emulator with no requests recorded and no faults."""
    emulator = Gemini(gemini_url)
    await emulator.reset()
    yield emulator
    await emulator.reset()


@pytest.fixture
def settings(database_url: str, redis_url: str, prefix: str, gemini_url: str) -> AgentSettings:
    """Agent settings for one test: private Redis prefix, fast retries, the emulator."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "redis_prefix": prefix,
        "baton_env": "test",
        "consumer_block_ms": 50,
        "GOOGLE_API_KEY": "test-key",
        "GEMINI_BASE_URL": gemini_url,
        "GEMINI_RETRIES": 3,
        "GEMINI_RETRY_BACKOFF_SECONDS": 0.01,
        "GEMINI_TIMEOUT_SECONDS": 10,
        "AGENT_CONCURRENCY": 2,
    }
    return AgentSettings(**values)


@dataclass
class RunningAgent:
    """The agent app with its workers running."""

    app: FastAPI
    ctx: AgentContext


@pytest.fixture
async def agent(settings: AgentSettings, gemini: Gemini) -> AsyncIterator[RunningAgent]:
    """The agent app inside its lifespan: consumers, outbox relay and graph running."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield RunningAgent(app, app.state.agent)


def make_turn(
    *texts: str,
    wa_id: str | None = None,
    types: list[MessageType] | None = None,
    phone_number_id: str = PHONE_NUMBER_ID,
) -> TurnReady:
    """A TurnReady for a fresh (or given) customer of a business number (the test one
    unless given) with one message per text."""
    customer = wa_id or f"34{uuid.uuid4().int % 10**10:010d}"
    kinds = types or [MessageType.TEXT] * len(texts)
    messages = [
        InboundMessage(
            message_id=f"wamid.{uuid.uuid4().hex}",
            phone_number_id=phone_number_id,
            wa_id=customer,
            timestamp=datetime.now(UTC),
            type=kind,
            text=text or None,
        )
        for text, kind in zip(texts, kinds, strict=True)
    ]
    turn = Turn(
        turn_id=uuid.uuid4(),
        phone_number_id=phone_number_id,
        wa_id=customer,
        sequence=1,
        messages=messages,
        closed_by=TurnCloseReason.QUIET,
    )
    return TurnReady.create(
        turn, producer="test", conversation_id=conversation_id_for(phone_number_id, customer)
    )


async def events(bus: Bus, stream: str) -> list[Event]:
    """Every event on `stream` under the test's prefix, oldest first."""
    entries: Any = await bus.redis.xrange(bus.key(stream))
    return [parse_event(f["event_type"], int(f["schema_version"]), f["body"]) for _, f in entries]
