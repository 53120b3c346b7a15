"""The live feed (SSE), the queue order, stats, and idempotent consumption."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from baton_operator_api import feed
from baton_operator_api.settings import OperatorApiSettings
from baton_shared.events import Author, MessageSent, OutboundKind, OutboundOutcome, utcnow
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import NewOperator, auth, customer_writes, inbound, new_wa_id

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(settings: OperatorApiSettings) -> OperatorApiSettings:
    """Open feeds re-check their token every 0.2 s here (30 s by default)."""
    return settings.model_copy(update={"feed_recheck_seconds": 0.2})


async def _true(value: bool) -> bool:
    return value


async def test_follow_yields_events_in_stream_order(bus: Bus) -> None:
    wa_id = new_wa_id()
    stop = asyncio.Event()
    await bus.publish(inbound(wa_id, "before the client connected"))
    items = feed.follow(bus, stop, since=await feed.positions_now(bus), block_ms=50)
    for n in range(5):
        await bus.publish(inbound(wa_id, f"message {n}"))
    got = [await anext(items) for _ in range(5)]
    stop.set()
    assert [g.data["text"] for g in got] == [f"message {n}" for n in range(5)]
    assert {g.kind for g in got} == {"message_in"}
    resumed = feed.follow(bus, stop, since=feed.parse_position(got[1].id), block_ms=50)
    stop.clear()
    assert (await anext(resumed)).data["text"] == "message 2"
    stop.set()


def test_a_customer_message_says_when_the_customer_sent_it() -> None:
    # `occurred_at` is when ingress read it; the transcript orders by WhatsApp's timestamp.
    sent = datetime(2026, 11, 27, 9, 30, 5, tzinfo=UTC)
    described = feed.describe(inbound(new_wa_id(), "hi", at=sent))
    assert described is not None
    kind, data = described
    assert kind == "message_in"
    assert data["sent_at"] == "2026-11-27T09:30:05+00:00"


def test_the_ai_typing_indicator_is_not_in_the_feed() -> None:
    outcome = OutboundOutcome(
        command_id="c1", phone_number_id="1", to="2", author=Author.AI, kind=OutboundKind.TEXT
    )
    typing = outcome.model_copy(update={"kind": OutboundKind.TYPING})
    sent = feed.describe(MessageSent.create(outcome, producer="sender"))
    assert sent is not None
    assert sent[0] == "message_out"
    assert feed.describe(MessageSent.create(typing, producer="sender")) is None


async def test_sse_endpoint_streams_mode_changes_in_order(
    server_url: str, client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator("sse-op")
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    received: list[tuple[str, dict[str, object]]] = []
    # Resume from a known position, so the test does not depend on when the server subscribes.
    headers = {**auth(token), "Last-Event-ID": ",".join(await feed.positions_now(bus))}
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=10) as http,
        http.stream(
            "GET",
            "/api/v1/events",
            params={"conversation_id": conversation_id},
            headers=headers,
        ) as response,
    ):
        assert response.status_code == 200
        await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
        await client.post("/api/v1/handback", json={"wa_id": wa_id}, headers=auth(token))
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                received.append((kind, json.loads(line.split(":", 1)[1])))
                if len(received) == 2:
                    break
    assert [(k, d["mode"], d["epoch"]) for k, d in received] == [
        ("mode_change", "operator", 1),
        ("mode_change", "ai", 2),
    ]


async def test_queue_is_ordered_by_waiting_time(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    newer, older = new_wa_id(), new_wa_id()
    await customer_writes(bus, client, token, newer, at=utcnow() - timedelta(minutes=1))
    await customer_writes(bus, client, token, older, at=utcnow() - timedelta(minutes=5))
    response = await client.get("/api/v1/conversations", params={"limit": 200}, headers=auth(token))
    order = [i["wa_id"] for i in response.json()["items"] if i["wa_id"] in (newer, older)]
    assert order == [older, newer]


async def test_a_redelivered_inbound_event_is_recorded_once(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    event = inbound(wa_id)
    conversation_id = str(event.conversation_id)
    await bus.publish(event)
    await bus.redis.delete(bus.key(names.published_marker(str(event.event_id))))
    await bus.publish(event)  # the same event appended twice (at-least-once upstream)
    await customer_writes(bus, client, token, wa_id, text="after")  # processed in order

    r = await client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=auth(token))
    assert [m["text"] for m in r.json()["items"]] == ["hello", "after"]


async def test_stats_count_modes_and_messages(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    await customer_writes(bus, client, token, new_wa_id())
    stats = (await client.get("/stats", headers=auth(token))).json()
    assert stats["conversations_by_mode"]["ai"] >= 1
    assert stats["messages_today"]["in"] >= 1
    assert set(stats["ai_latency_ms"]) == {"p50", "p95"}


async def test_open_feeds_are_capped_and_never_starve_takeovers(
    server_url: str, client: httpx.AsyncClient, bus: Bus, app: FastAPI, new_operator: NewOperator
) -> None:
    # Each open feed holds a Redis connection in a blocking read. They come from the feeds'
    # own pool, capped: dashboards left open can never take the connections a takeover
    # needs to write its fence (before, ~100 feeds made every takeover answer 503).
    ctx = app.state.ctx
    ctx.feeds.limit = 2
    token = await new_operator()
    wa_id = new_wa_id()
    await customer_writes(bus, client, token, wa_id)
    assert ctx.feeds.bus.redis is not ctx.runtime.bus.redis

    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=server_url, timeout=10))
        for _ in range(2):
            opened = await stack.enter_async_context(
                http.stream("GET", "/api/v1/events", headers=auth(token))
            )
            assert opened.status_code == 200
        third = await http.get("/api/v1/events", headers=auth(token))
        assert third.status_code == 503
        assert third.json()["error"] == "too_many_feeds"
        takeover = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
        assert takeover.status_code == 200

    await wait_until(lambda: _true(ctx.feeds.open == 0), what="closed feeds give their place back")


async def test_a_feed_ends_once_its_token_is_revoked(
    server_url: str, client: httpx.AsyncClient, app: FastAPI, admin_token: str
) -> None:
    name = f"feed-{uuid.uuid4().hex[:6]}"
    created = await client.post(
        "/api/v1/operators", json={"name": name, "role": "operator"}, headers=auth(admin_token)
    )
    token = created.json()["token"]
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=10) as http,
        http.stream("GET", "/api/v1/events", headers=auth(token)) as response,
    ):
        assert response.status_code == 200
        gone = await client.delete(f"/api/v1/operators/{name}", headers=auth(admin_token))
        assert gone.status_code == 204

        async def drain() -> None:
            async for _ in response.aiter_lines():
                pass

        await asyncio.wait_for(drain(), timeout=10)  # the server ended the stream
    await wait_until(lambda: _true(app.state.ctx.feeds.open == 0), what="its place given back")
