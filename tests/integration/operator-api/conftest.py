"""The operator-api running in-process against the test run's PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from baton_operator_api.context import ServiceContext
from baton_operator_api.main import create_app
from baton_operator_api.settings import OperatorApiSettings
from baton_shared.events import (
    Author,
    InboundMessage,
    MessageReceived,
    MessageType,
    OutboundKind,
    OutboundOutcome,
    utcnow,
)
from baton_shared.events.ids import conversation_id_for
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

PHONE_NUMBER_ID = "100200300"

NewOperator = Callable[..., Awaitable[str]]


@pytest.fixture
def admin_token() -> str:
    """The bootstrap admin token of this test's app."""
    return "bat_" + secrets.token_urlsafe(24)


@pytest.fixture
def settings(
    database_url: str, redis_url: str, prefix: str, admin_token: str
) -> OperatorApiSettings:
    """Settings pointing at this run's database and this test's Redis prefix."""
    return OperatorApiSettings(
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=prefix,
        baton_env="test",
        consumer_block_ms=50,
        BATON_BOOTSTRAP_ADMIN_TOKEN=admin_token,
        BATON_BOOTSTRAP_ADMIN_NAME=f"admin-{uuid.uuid4().hex[:6]}",
    )


@pytest.fixture
async def app(settings: OperatorApiSettings, redis: object) -> AsyncIterator[FastAPI]:
    """The app with its workers running (lifespan entered)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def ctx(app: FastAPI) -> ServiceContext:
    """The app's service context."""
    context: ServiceContext = app.state.ctx
    return context


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://operator-api") as c:
        yield c


def auth(token: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def new_operator(client: httpx.AsyncClient, admin_token: str) -> NewOperator:
    """Create an operator through the API and return its token."""

    async def create(name: str | None = None, role: str = "operator") -> str:
        body = {"name": name or f"op-{uuid.uuid4().hex[:8]}", "role": role}
        response = await client.post("/api/v1/operators", json=body, headers=auth(admin_token))
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token

    return create


def new_wa_id() -> str:
    """A customer id private to one test."""
    return str(10**11 + secrets.randbelow(10**11))


def inbound(
    wa_id: str, text: str = "hello", *, at: datetime | None = None, pnid: str = PHONE_NUMBER_ID
) -> MessageReceived:
    """A customer message event as the ingress publishes it."""
    message = InboundMessage(
        message_id=f"wamid.{uuid.uuid4().hex}",
        phone_number_id=pnid,
        wa_id=wa_id,
        customer_name="Ana",
        timestamp=at or utcnow(),
        type=MessageType.TEXT,
        text=text,
    )
    return MessageReceived.create(
        message, producer="test", conversation_id=conversation_id_for(pnid, wa_id)
    )


async def customer_writes(
    bus: Bus, client: httpx.AsyncClient, token: str, wa_id: str, **kwargs: object
) -> str:
    """Publish a customer message and wait until the read model has it; returns the conv id."""
    event = inbound(wa_id, **kwargs)  # type: ignore[arg-type]
    await bus.publish(event)
    conversation_id = str(event.conversation_id)

    async def seen() -> bool:
        r = await client.get(
            f"/api/v1/conversations/{conversation_id}/messages", headers=auth(token)
        )
        return r.status_code == 200 and any(
            m["wa_message_id"] == event.payload.message_id for m in r.json()["items"]
        )

    await wait_until(seen, what="inbound message in the transcript")
    return conversation_id


def ai_outcome(
    wa_id: str, command_id: str, *, kind: OutboundKind = OutboundKind.TEXT, **fields: Any
) -> OutboundOutcome:
    """What the sender reports for an AI command to `wa_id`."""
    return OutboundOutcome(
        command_id=command_id,
        phone_number_id=PHONE_NUMBER_ID,
        to=wa_id,
        author=Author.AI,
        kind=kind,
        **fields,
    )


@pytest.fixture
async def server_url(app: FastAPI) -> AsyncIterator[str]:
    """The app served by uvicorn on a free port (SSE needs a real streaming server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def started() -> bool:
        return bool(server.started)

    await wait_until(started, what="uvicorn started")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    server.force_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)
    sock.close()
