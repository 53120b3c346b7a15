"""Redis down: a control change is never answered 200 without its fencing copy."""

from __future__ import annotations

import dataclasses
import socket

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from baton_operator_api.context import ServiceContext
from baton_operator_api.control import ControlState
from baton_operator_api.fencing import Fence
from baton_shared.events import Mode
from baton_shared.streams.bus import Bus

from .conftest import NewOperator, auth, customer_writes, new_wa_id

pytestmark = pytest.mark.integration


def unreachable_redis_url() -> str:
    """A Redis URL on a local port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


async def test_takeover_answers_503_when_redis_is_down_and_a_retry_heals_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    bus: Bus,
    ctx: ServiceContext,
    new_operator: NewOperator,
) -> None:
    token = await new_operator("rita")
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    dead = Redis.from_url(unreachable_redis_url(), socket_connect_timeout=1)
    app.state.ctx = dataclasses.replace(ctx, fence=Fence(Bus(dead, prefix=bus.prefix)))
    try:
        down = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    finally:
        app.state.ctx = ctx
        await dead.aclose()

    assert down.status_code == 503, down.text
    assert down.json()["error"] == "redis_unavailable"
    assert await ctx.fence.read(conversation_id) is None  # the sender never saw it

    # Redis is back: repeating the request is safe, answers 200 and writes the fencing copy.
    again = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    assert again.status_code == 200, again.text
    assert (again.json()["mode"], again.json()["epoch"]) == ("operator", 1)
    assert await ctx.fence.read(conversation_id) == ControlState(Mode.OPERATOR, 1, "rita")


async def test_handback_answers_503_when_redis_is_down_and_the_fence_stays_safe(
    app: FastAPI,
    client: httpx.AsyncClient,
    bus: Bus,
    ctx: ServiceContext,
    new_operator: NewOperator,
) -> None:
    token = await new_operator("sam")
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    taken = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    assert taken.status_code == 200, taken.text
    dead = Redis.from_url(unreachable_redis_url(), socket_connect_timeout=1)
    app.state.ctx = dataclasses.replace(ctx, fence=Fence(Bus(dead, prefix=bus.prefix)))
    try:
        handback = await client.post("/api/v1/handback", json={"wa_id": wa_id}, headers=auth(token))
    finally:
        app.state.ctx = ctx
        await dead.aclose()

    assert handback.status_code == 503, handback.text
    assert handback.json()["error"] == "redis_unavailable"
    # The sender still sees the operator (the AI stays silent: the safe side) until a retry.
    assert await ctx.fence.read(conversation_id) == ControlState(Mode.OPERATOR, 1, "sam")
    again = await client.post("/api/v1/handback", json={"wa_id": wa_id}, headers=auth(token))
    assert again.status_code == 200, again.text
    assert await ctx.fence.read(conversation_id) == ControlState(Mode.AI, 2)
