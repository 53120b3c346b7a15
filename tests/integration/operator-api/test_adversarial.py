"""Inputs, races, idempotency, auth and the live feed, trying to break the operator-api
against real PostgreSQL and Redis.

The sections headed "was a fault" hold tests written against a fault, each fixed since.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from baton_operator_api import feed
from baton_operator_api.context import ServiceContext
from baton_operator_api.control import ControlState
from baton_operator_api.db.models import audit_log, conversations, tokens
from baton_shared.db.tables import inbox
from baton_shared.events import (
    Author,
    ControlChange,
    ConversationTakenOver,
    DeliveryStatus,
    DeliveryStatusChanged,
    MessageFailed,
    MessageReceived,
    MessageSent,
    Mode,
    OutboundKind,
    OutboundOutcome,
    utcnow,
)
from baton_shared.events.ids import conversation_id_for
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import drained, wait_until

from .conftest import PHONE_NUMBER_ID, NewOperator, auth, customer_writes, inbound, new_wa_id

pytestmark = pytest.mark.integration


# --- helpers ---------------------------------------------------------------------------


async def _true(value: bool) -> bool:
    return value


@pytest.fixture
async def raw_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sees a server error as the 500 a real server would answer."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://operator-api") as c:
        yield c


async def _control_events(bus: Bus, conversation_id: str) -> list[dict[str, Any]]:
    entries = await bus.redis.xrange(bus.key(names.CONV_CONTROL))
    bodies = [json.loads(fields["body"]) for _, fields in entries]
    return [b for b in bodies if b["conversation_id"] == conversation_id]


async def _outbound_commands(bus: Bus, wa_id: str) -> list[dict[str, Any]]:
    entries = await bus.redis.xrange(bus.key(names.WA_OUTBOUND))
    payloads = [json.loads(fields["body"])["payload"] for _, fields in entries]
    return [p for p in payloads if p["to"] == wa_id]


async def _conversation(client: httpx.AsyncClient, token: str, cid: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/conversations/{cid}", headers=auth(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _transcript(client: httpx.AsyncClient, token: str, cid: str) -> list[dict[str, Any]]:
    r = await client.get(
        f"/api/v1/conversations/{cid}/messages", params={"limit": 200}, headers=auth(token)
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def _handled(ctx: ServiceContext, event_id: uuid.UUID) -> bool:
    async with ctx.db.session() as session:
        found = await session.scalar(select(inbox.c.event_id).where(inbox.c.event_id == event_id))
        return found is not None


# --- was a fault: a lone surrogate in a template component is a 500 -----------------


@pytest.mark.parametrize("component", ['{"type": "body", "x": "\\ud800"}', '{"\\udfff": 1}'])
async def test_lone_surrogate_in_template_components_is_a_clear_422(
    raw_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    bus: Bus,
    new_operator: NewOperator,
    component: str,
) -> None:
    # Was: `TemplateIn.components` is `list[dict[str, Any]]`, so pydantic does not check the
    # strings inside; JSON allows "\ud800" (a lone UTF-16 surrogate), Python decodes it, and
    # serialising the MessageRequested event for the outbox (messaging.py: add_to_outbox)
    # raises PydanticSerializationError -> 500. Text fields are refused with 422
    # (string_unicode); this one must be too (invariant 8).
    token = await new_operator()
    wa_id = new_wa_id()
    cid = await customer_writes(bus, client, token, wa_id)
    assert (
        await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    ).status_code == 200
    raw = (
        f'{{"wa_id": "{wa_id}", "template": {{"name": "order_update", '
        f'"language": {{"code": "en"}}, "components": [{component}]}}}}'
    )
    response = await raw_client.post(
        "/api/v1/operator-message",
        content=raw.encode(),
        headers={**auth(token), "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    # and nothing was recorded
    assert [m["direction"] for m in await _transcript(client, token, cid)] == ["in"]


# --- was a fault: a Last-Event-ID past Redis's id range breaks the feed -------------


async def test_a_last_event_id_past_redis_range_does_not_break_the_feed(
    server_url: str, app: FastAPI, client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    # Was: feed.parse_position accepts up to 20 digits per part (`\d{1,20}`), more than a
    # Redis stream id holds (2^64 - 1 = 18446744073709551615). XREAD then fails with
    # "Invalid stream ID" inside the already-started 200 response and the server drops the
    # connection mid-body; an EventSource reconnects with the same header, for ever. A
    # malformed Last-Event-ID should be treated like one that is absent (or refused with 4xx).
    token = await new_operator()
    wa_id = new_wa_id()
    await customer_writes(bus, client, token, wa_id)
    headers = {**auth(token), "Last-Event-ID": "99999999999999999999-0,0-0,0-0"}
    got: list[str] = []
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=10) as http,
        http.stream("GET", "/api/v1/events", headers=headers) as response,
    ):
        if response.status_code == 200:

            async def first_data() -> None:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        got.append(line)
                        return

            reader = asyncio.create_task(first_data())

            # publish until the feed shows something (it may subscribe a moment later)
            async def shown() -> bool:
                if not reader.done():
                    await bus.publish(inbound(wa_id, "are you there?"))
                    await asyncio.sleep(0.05)
                return reader.done()

            await wait_until(shown, what="an event on the feed or the stream's end")
            try:
                reader.result()
            except httpx.TransportError as exc:  # RemoteProtocolError: incomplete chunked read
                pytest.fail(f"the server dropped the feed mid-response: {exc!r}")
            assert got
        else:
            assert 400 <= response.status_code < 500
    await wait_until(lambda: _true(app.state.ctx.feeds.open == 0), what="feed slot released")


# --- was a fault: the feed loses cross-stream order when it is more than a batch behind ---


async def test_the_feed_keeps_stream_order_when_resuming_more_than_a_batch_behind(
    bus: Bus,
) -> None:
    # Was: feed.follow XREADs each stream with COUNT 100 and sorts one batch; a client that
    # resumes (Last-Event-ID) more than 100 entries behind on one stream gets an entry of
    # another stream that happened *later* before the rest of the first stream's entries,
    # though the feed promises stream order ("as they happen, in order"). Fix: in a batch,
    # only yield entries up to the smallest last id among streams whose reply was full
    # (count reached), keep the rest for the next read.
    wa_id = new_wa_id()
    cid = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    since = await feed.positions_now(bus)
    for n in range(150):
        await bus.publish(inbound(wa_id, f"m{n}"))
    change = ControlChange(
        phone_number_id=PHONE_NUMBER_ID, wa_id=wa_id, mode=Mode.OPERATOR, epoch=1, operator="z"
    )
    await bus.publish(ConversationTakenOver.create(change, producer="test", conversation_id=cid))

    stop = asyncio.Event()
    items = feed.follow(bus, stop, since=since, block_ms=50)
    got = [await asyncio.wait_for(anext(items), timeout=10) for _ in range(151)]
    stop.set()
    kinds = [g.kind for g in got]
    assert kinds == ["message_in"] * 150 + ["mode_change"], kinds.index("mode_change")


# --- was a fault: the same WhatsApp message under a new event id reopened a conversation ---


async def test_a_customer_message_seen_again_under_a_new_event_id_changes_nothing(
    client: httpx.AsyncClient, bus: Bus, ctx: ServiceContext, new_operator: NewOperator
) -> None:
    # Was: message_received.handle de-duplicates on the event id only. transcript.add_inbound
    # already knows the WhatsApp id was recorded (it returns False) but the result is ignored:
    # note_inbound restarts the waiting clock and a resolved conversation is reopened to the
    # AI (a `conversation.reopened` event) by a message that was answered before it was
    # resolved. Invariant 2 makes the WhatsApp id the key ("processed once"), as the buffer
    # does. Fix: when add_inbound returns False, skip note_inbound, media and reopen.
    token = await new_operator()
    wa_id = new_wa_id()
    first = inbound(wa_id, "where is my order?")
    await bus.publish(first)
    cid = str(first.conversation_id)
    await wait_until(lambda: _handled(ctx, first.event_id), what="first delivery handled")
    resolved = await client.post(f"/api/v1/conversations/{cid}/resolve", headers=auth(token))
    assert resolved.json()["mode"] == "resolved"
    assert resolved.json()["waiting_since"] is None

    again = MessageReceived.create(first.payload, producer="ingress", conversation_id=cid)
    await bus.publish(again)
    await wait_until(lambda: _handled(ctx, again.event_id), what="second delivery handled")

    state = await _conversation(client, token, cid)
    assert len(await _transcript(client, token, cid)) == 1
    assert (state["mode"], state["waiting_since"]) == ("resolved", None)


# --- was a fault: rotating the token of a deactivated operator issues a dead token ---


async def test_rotating_the_token_of_a_deactivated_operator_is_not_a_201_with_a_dead_token(
    client: httpx.AsyncClient, admin_token: str, new_operator: NewOperator
) -> None:
    # Was: routes/operators.py rotate_token does not look at `active`: for a deactivated
    # operator it answers 201 with a token that every request refuses with 401. It should
    # refuse (409, "deactivated; POST /api/v1/operators to reactivate") or reactivate.
    name = f"gone-{uuid.uuid4().hex[:6]}"
    await new_operator(name)
    assert (
        await client.delete(f"/api/v1/operators/{name}", headers=auth(admin_token))
    ).status_code == 204
    rotated = await client.post(f"/api/v1/operators/{name}/token", headers=auth(admin_token))
    if rotated.status_code == 201:
        token = rotated.json()["token"]
        works = await client.get("/api/v1/conversations", headers=auth(token))
        assert works.status_code == 200, "201 issued a token that cannot be used"
    else:
        assert rotated.status_code == 409


# --- races on one conversation ------------------------------------------------


async def test_concurrent_control_actions_keep_postgresql_fence_and_events_consistent(
    client: httpx.AsyncClient, bus: Bus, ctx: ServiceContext, new_operator: NewOperator
) -> None:
    # Takeovers, handbacks and resolves by two operators at once: whatever wins, every change
    # has its own epoch, the events say the same in the same order, and the fence ends equal
    # to PostgreSQL (a late fence writer never regresses it).
    a, b = await new_operator(), await new_operator()
    wa_id = new_wa_id()
    cid = await customer_writes(bus, client, a, wa_id)
    body = {"wa_id": wa_id}
    calls = []
    for token in (a, b) * 4:
        calls += [
            client.post("/api/v1/takeover", json=body, headers=auth(token)),
            client.post("/api/v1/handback", json=body, headers=auth(token)),
            client.post(f"/api/v1/conversations/{cid}/resolve", headers=auth(token)),
        ]
    responses = await asyncio.gather(*calls)
    assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]

    final = await _conversation(client, a, cid)
    fence = await ctx.fence.read(cid)
    expected_mode = Mode.AI if final["mode"] == "resolved" else Mode(final["mode"])
    assert fence == ControlState(expected_mode, final["epoch"], final["operator"])

    async def all_events() -> list[dict[str, Any]] | None:
        events = await _control_events(bus, cid)
        return events if len(events) == final["epoch"] else None

    events = await wait_until(all_events, what="one conv.control event per epoch")
    assert [e["payload"]["epoch"] for e in events] == list(range(1, final["epoch"] + 1))
    assert events[-1]["payload"]["mode"] == final["mode"]
    # every 200 answered a state that existed: its epoch is one of the events' epochs
    seen = {(e["payload"]["epoch"], e["payload"]["mode"]) for e in events}
    for r in responses:
        if r.status_code == 200 and r.json()["epoch"] > 0:
            assert (r.json()["epoch"], r.json()["mode"]) in seen


async def test_concurrent_takeovers_of_a_new_customer_create_one_conversation_one_holder(
    client: httpx.AsyncClient, bus: Bus, ctx: ServiceContext, new_operator: NewOperator
) -> None:
    tokens_ = [await new_operator() for _ in range(4)]
    wa_id = new_wa_id()
    body = {"wa_id": wa_id, "phone_number_id": PHONE_NUMBER_ID}
    responses = await asyncio.gather(
        *(client.post("/api/v1/takeover", json=body, headers=auth(t)) for t in tokens_)
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
    async with ctx.db.session() as session:
        count = await session.scalar(
            select(text("count(*)"))
            .select_from(conversations)
            .where(conversations.c.wa_id == wa_id)
        )
    assert count == 1
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert winner["epoch"] == 1
    assert await ctx.fence.read(winner["id"]) == ControlState(Mode.OPERATOR, 1, winner["operator"])


async def test_an_operator_message_racing_a_handback_never_goes_out_under_the_ai(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    # Each message is either accepted under the operator's epoch (it was written before the
    # handback took the row lock) or refused with 409; none is stamped with the AI's epoch.
    token = await new_operator()
    wa_id = new_wa_id()
    cid = await customer_writes(bus, client, token, wa_id)
    taken = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    held_epoch = taken.json()["epoch"]
    messages = [
        client.post(
            "/api/v1/operator-message", json={"wa_id": wa_id, "text": f"m{n}"}, headers=auth(token)
        )
        for n in range(6)
    ]
    handback = client.post("/api/v1/handback", json={"wa_id": wa_id}, headers=auth(token))
    results = await asyncio.gather(*messages[:3], handback, *messages[3:])
    back = results[3]
    all_messages = results[:3] + results[4:]
    assert back.status_code == 200
    assert back.json()["epoch"] == held_epoch + 1
    accepted = [r for r in all_messages if r.status_code == 202]
    assert all(r.status_code in (202, 409) for r in all_messages)
    # accepted ones are in the transcript and on wa.outbound, under the operator's epoch
    transcript = await _transcript(client, token, cid)
    ids = {m["command_id"] for m in transcript if m["direction"] == "out"}
    assert ids == {r.json()["command_id"] for r in accepted}

    if accepted:
        commands = await wait_until(
            lambda: _at_least(_outbound_commands(bus, wa_id), len(accepted)), what="commands"
        )
        assert {c["control_epoch"] for c in commands} == {held_epoch}
    # after the handback, the operator cannot write
    late = await client.post(
        "/api/v1/operator-message", json={"wa_id": wa_id, "text": "late"}, headers=auth(token)
    )
    assert late.status_code == 409


async def _at_least(probe: Any, n: int) -> Any:
    items = await probe
    return items if len(items) >= n else None


async def test_the_same_client_id_sent_concurrently_is_one_message(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    cid = await customer_writes(bus, client, token, wa_id)
    await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    body = {"wa_id": wa_id, "text": "once", "client_id": "retry-me"}
    responses = await asyncio.gather(
        *(client.post("/api/v1/operator-message", json=body, headers=auth(token)) for _ in range(5))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["command_id"] for r in responses}) == 1
    out = [m for m in await _transcript(client, token, cid) if m["direction"] == "out"]
    assert len(out) == 1
    await wait_until(lambda: _outbound_commands(bus, wa_id), what="the command")
    # the relay has published everything staged: exactly one command
    await wait_until(lambda: _at_least(_outbound_commands(bus, wa_id), 1))
    assert len(await _outbound_commands(bus, wa_id)) == 1


# --- stream idempotency and order -------------------------------------------


async def test_results_out_of_order_and_twice_end_at_the_furthest_status(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    # `read` arrives before `sent`, every event twice (the same entry re-appended): the
    # transcript shows one row, `read`, with WhatsApp's id, and the customer's waiting clock
    # is stopped by the `sent`.
    token = await new_operator()
    wa_id = new_wa_id()
    cid = await customer_writes(bus, client, token, wa_id)
    outcome = OutboundOutcome(
        command_id=f"ai-{uuid.uuid4().hex[:8]}",
        phone_number_id=PHONE_NUMBER_ID,
        to=wa_id,
        author=Author.AI,
        kind=OutboundKind.TEXT,
        text="Your order ships today",
        wa_message_id="wamid.x1",
    )
    read = DeliveryStatusChanged.create(
        outcome.model_copy(update={"status": DeliveryStatus.READ}),
        producer="sender",
        conversation_id=cid,
    )
    sent = MessageSent.create(outcome, producer="sender", conversation_id=cid)
    for event in (read, sent, read, sent):
        await bus.publish(event, stream=names.WA_OUTBOUND_RESULTS)
        await bus.redis.delete(bus.key(names.published_marker(str(event.event_id))))
    await wait_until(
        lambda: drained(bus.redis, bus.key(names.WA_OUTBOUND_RESULTS)), what="results handled"
    )
    out = [m for m in await _transcript(client, token, cid) if m["direction"] == "out"]
    assert [(m["status"], m["wa_message_id"], m["author"]) for m in out] == [
        ("read", "wamid.x1", "ai")
    ]
    assert (await _conversation(client, token, cid))["waiting_since"] is None


async def test_a_failed_message_stays_failed_whatever_arrives_after(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    cid = await customer_writes(bus, client, token, wa_id)
    outcome = OutboundOutcome(
        command_id=f"ai-{uuid.uuid4().hex[:8]}",
        phone_number_id=PHONE_NUMBER_ID,
        to=wa_id,
        author=Author.AI,
        kind=OutboundKind.TEXT,
        text="hi",
    )
    failed = MessageFailed.create(
        outcome.model_copy(update={"status": DeliveryStatus.FAILED, "reason": "rejected"}),
        producer="sender",
        conversation_id=cid,
    )
    delivered = DeliveryStatusChanged.create(
        outcome.model_copy(update={"status": DeliveryStatus.DELIVERED}),
        producer="sender",
        conversation_id=cid,
    )
    for event in (
        failed,
        delivered,
        MessageSent.create(outcome, producer="s", conversation_id=cid),
    ):
        await bus.publish(event)
    await wait_until(
        lambda: drained(bus.redis, bus.key(names.WA_OUTBOUND_RESULTS)), what="results handled"
    )
    [out] = [m for m in await _transcript(client, token, cid) if m["direction"] == "out"]
    assert (out["status"], out["reason"]) == ("failed", "rejected")


async def test_a_duplicated_intervention_request_after_handback_does_not_requeue(
    client: httpx.AsyncClient, bus: Bus, ctx: ServiceContext, new_operator: NewOperator
) -> None:
    # The AI's request (epoch 1) is applied, an operator takes over and hands back, then the
    # same request entry is delivered again (re-appended): it changes nothing.
    from baton_shared.events import InterventionRequested

    token = await new_operator()
    wa_id = new_wa_id()
    cid = await customer_writes(bus, client, token, wa_id)
    change = ControlChange(
        phone_number_id=PHONE_NUMBER_ID, wa_id=wa_id, mode=Mode.PENDING_HUMAN, epoch=1
    )
    request = InterventionRequested.create(change, producer="agent", conversation_id=cid)
    await bus.publish(request)
    await wait_until(lambda: _handled(ctx, request.event_id), what="request handled")
    assert (await _conversation(client, token, cid))["mode"] == "pending_human"
    await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    back = await client.post("/api/v1/handback", json={"wa_id": wa_id}, headers=auth(token))
    assert back.json()["epoch"] == 3

    await bus.redis.delete(bus.key(names.published_marker(str(request.event_id))))
    await bus.publish(request)
    await wait_until(lambda: drained(bus.redis, bus.key(names.CONV_CONTROL)), what="drained")
    state = await _conversation(client, token, cid)
    assert (state["mode"], state["epoch"]) == ("ai", 3)
    assert await ctx.fence.read(cid) == ControlState(Mode.AI, 3)


# --- transcript paging edges -------------------------------------------------


async def test_paging_a_transcript_with_equal_timestamps_both_ways_sees_each_message_once(
    client: httpx.AsyncClient, bus: Bus, ctx: ServiceContext, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    at = utcnow() - timedelta(minutes=1)
    events = [inbound(wa_id, f"m{n}", at=at) for n in range(7)]
    for event in events:
        await bus.publish(event)
    cid = str(events[0].conversation_id)
    await wait_until(lambda: _handled(ctx, events[-1].event_id), what="all recorded")
    everything = [m["id"] for m in await _transcript(client, token, cid)]
    assert len(everything) == 7

    forward: list[int] = []
    after = 0
    for _ in range(10):
        r = await client.get(
            f"/api/v1/conversations/{cid}/messages",
            params={"after": after, "limit": 3},
            headers=auth(token),
        )
        page = r.json()
        forward += [m["id"] for m in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert forward == everything

    backward: list[int] = []
    before = 0
    for _ in range(10):
        r = await client.get(
            f"/api/v1/conversations/{cid}/messages",
            params={"before": before, "limit": 3},
            headers=auth(token),
        )
        page = r.json()
        backward = [m["id"] for m in page["items"]] + backward
        if page["next_before"] is None:
            break
        before = page["next_before"]
    assert backward == everything

    both = await client.get(
        f"/api/v1/conversations/{cid}/messages",
        params={"after": everything[0], "before": everything[-1]},
        headers=auth(token),
    )
    assert both.status_code == 400
    unknown = await client.get(
        f"/api/v1/conversations/{uuid.uuid4()}/messages", headers=auth(token)
    )
    assert unknown.status_code == 404


# --- authorisation and secrets -------------------------------------------------


async def test_resolve_of_a_conversation_held_by_another_operator_is_409_for_operators(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator, admin_token: str
) -> None:
    holder, other = await new_operator(), await new_operator()
    wa_id = new_wa_id()
    cid = await customer_writes(bus, client, holder, wa_id)
    await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(holder))
    refused = await client.post(f"/api/v1/conversations/{cid}/resolve", headers=auth(other))
    assert refused.status_code == 409
    state = await _conversation(client, holder, cid)
    assert (state["mode"], state["epoch"]) == ("operator", 1)
    forced = await client.post(f"/api/v1/conversations/{cid}/resolve", headers=auth(admin_token))
    assert (forced.status_code, forced.json()["mode"], forced.json()["epoch"]) == (
        200,
        "resolved",
        2,
    )
    # the former holder may no longer write
    late = await client.post(
        "/api/v1/operator-message", json={"wa_id": wa_id, "text": "x"}, headers=auth(holder)
    )
    assert late.status_code == 409


async def test_tokens_are_stored_only_as_hashes_and_never_logged(
    client: httpx.AsyncClient,
    ctx: ServiceContext,
    admin_token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    name = f"h-{uuid.uuid4().hex[:6]}"
    created = await client.post("/api/v1/operators", json={"name": name}, headers=auth(admin_token))
    token = created.json()["token"]
    assert (await client.get("/stats", headers=auth(token))).status_code == 200
    assert (await client.get("/stats", headers=auth(token + "x"))).status_code == 401
    assert (await client.get("/stats", headers=auth(token.upper()))).status_code == 401
    assert (
        await client.get("/stats", headers={"Authorization": f"Basic {token}"})
    ).status_code == 401
    async with ctx.db.session() as session:
        hashes = set((await session.execute(select(tokens.c.token_hash))).scalars())
        audits = [
            json.dumps(d) for d in (await session.execute(select(audit_log.c.details))).scalars()
        ]
    assert hashlib.sha256(token.encode()).hexdigest() in hashes
    assert token not in hashes
    assert not any(token in a or admin_token in a for a in audits)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in logged
    assert admin_token not in logged


async def test_a_deactivated_holder_is_refused_and_an_admin_can_hand_back(
    client: httpx.AsyncClient, bus: Bus, admin_token: str, new_operator: NewOperator
) -> None:
    name = f"leaver-{uuid.uuid4().hex[:6]}"
    token = await new_operator(name)
    wa_id = new_wa_id()
    await customer_writes(bus, client, token, wa_id)
    await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    await client.delete(f"/api/v1/operators/{name}", headers=auth(admin_token))
    refused = await client.post(
        "/api/v1/operator-message", json={"wa_id": wa_id, "text": "x"}, headers=auth(token)
    )
    assert refused.status_code == 401
    back = await client.post("/api/v1/handback", json={"wa_id": wa_id}, headers=auth(admin_token))
    assert (back.status_code, back.json()["mode"], back.json()["epoch"]) == (200, "ai", 2)


# --- odd inputs answer 4xx ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/takeover", "[1]"),
        ("/api/v1/takeover", "null"),
        ("/api/v1/takeover", "{"),
        ("/api/v1/takeover", '{"wa_id": {"a": 1}}'),
        ("/api/v1/takeover", '{"wa_id": "1", "reason": "\\ud800"}'),
        ("/api/v1/handback", '{"phone": "+"}'),
        ("/api/v1/operator-message", '{"wa_id": "1", "text": "a\\udfffb"}'),
        (
            "/api/v1/operator-message",
            '{"wa_id": "1", "media": {"type": "image", "link": "http://x"}}',
        ),
        ("/api/v1/conversations/x/resolve", '"x"'),
        ("/api/v1/conversations/x/resolve", '{"note": 5}'),
        ("/api/v1/operators", '{"name": "a b"}'),
        ("/api/v1/operators", '{"name": "ok", "role": "root"}'),
    ],
)
async def test_malformed_bodies_are_4xx(
    raw_client: httpx.AsyncClient, admin_token: str, path: str, body: str
) -> None:
    response = await raw_client.post(
        path,
        content=body.encode(),
        headers={**auth(admin_token), "content-type": "application/json"},
    )
    assert 400 <= response.status_code < 500, response.text
    assert "error" in response.json()


async def test_unicode_and_maximal_values_round_trip(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    cid = await customer_writes(bus, client, token, wa_id, text="olá 👋 مرحبا")
    reason = "😀" * 500
    taken = await client.post(
        "/api/v1/takeover", json={"wa_id": wa_id, "reason": reason}, headers=auth(token)
    )
    assert taken.status_code == 200
    assert taken.json()["mode_reason"] == reason
    text_ = "ß" * 16_384  # the longest text accepted, 2 bytes each in UTF-8
    sent = await client.post(
        "/api/v1/operator-message", json={"wa_id": wa_id, "text": text_}, headers=auth(token)
    )
    assert sent.status_code == 202, sent.text
    items = await _transcript(client, token, cid)
    assert [m["text"] for m in items] == ["olá 👋 مرحبا", text_]
