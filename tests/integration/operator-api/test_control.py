"""Takeover, handback and resolve: control state in PostgreSQL, events on `conv.control`,
and the fencing hash in Redis written before the answer (invariant 4)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from baton_operator_api import feed
from baton_operator_api.context import ServiceContext
from baton_shared.events import ConversationReopened, Event, Mode, parse_event
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, NewOperator, auth, customer_writes, new_wa_id

pytestmark = pytest.mark.integration


async def control_events(bus: Bus, conversation_id: str) -> list[dict[str, object]]:
    """The control events of a conversation on `conv.control`, oldest first."""
    entries = await bus.redis.xrange(bus.key(names.CONV_CONTROL))
    bodies = [json.loads(fields["body"]) for _, fields in entries]
    return [b for b in bodies if b["conversation_id"] == conversation_id]


async def test_takeover_returns_only_after_the_fence_shows_the_new_epoch(
    client: httpx.AsyncClient, bus: Bus, ctx: ServiceContext, new_operator: NewOperator
) -> None:
    token = await new_operator("alice")
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)

    response = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["mode"], body["operator"], body["epoch"]) == ("operator", "alice", 1)
    # Read right after the 200, as the sender's fencing check would.
    fence = await bus.redis.hgetall(bus.key(names.control_state(conversation_id)))
    assert fence == {"mode": "operator", "epoch": "1", "operator": "alice"}

    published = await wait_until(lambda: control_events(bus, conversation_id))
    assert published[0]["event_type"] == "conversation.taken_over"
    assert published[0]["payload"]["epoch"] == 1


async def test_two_operators_racing_a_takeover_exactly_one_wins(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    tokens = {"bob": await new_operator("bob"), "carol": await new_operator("carol")}
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, tokens["bob"], wa_id)

    responses = await asyncio.gather(
        *(
            client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(t))
            for t in tokens.values()
        )
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409]
    winner = next(r.json()["operator"] for r in responses if r.status_code == 200)
    fence = await bus.redis.hgetall(bus.key(names.control_state(conversation_id)))
    assert fence == {"mode": "operator", "epoch": "1", "operator": winner}
    loser = next(r for r in responses if r.status_code == 409)
    assert winner in loser.json()["detail"]


async def test_repeated_takeover_is_a_no_op_and_force_needs_an_admin(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator, admin_token: str
) -> None:
    dave, erin = await new_operator("dave"), await new_operator("erin")
    wa_id = new_wa_id()
    await customer_writes(bus, client, dave, wa_id)
    first = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(dave))
    again = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(dave))
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["epoch"] == first.json()["epoch"] == 1

    forced = {"wa_id": wa_id, "force": True}
    assert (
        await client.post("/api/v1/takeover", json=forced, headers=auth(erin))
    ).status_code == 403
    taken = await client.post("/api/v1/takeover", json=forced, headers=auth(admin_token))
    assert taken.status_code == 200
    assert taken.json()["epoch"] == 2


async def test_handback_gives_the_conversation_back_to_the_ai(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    frank, gina = await new_operator("frank"), await new_operator("gina")
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, frank, wa_id)
    await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(frank))

    other = await client.post("/api/v1/handback", json={"wa_id": wa_id}, headers=auth(gina))
    assert other.status_code == 409
    response = await client.post(
        "/api/v1/handback", json={"phone": f"+{wa_id}", "note": "done"}, headers=auth(frank)
    )

    assert response.status_code == 200
    assert (response.json()["mode"], response.json()["epoch"]) == ("ai", 2)
    fence = await bus.redis.hgetall(bus.key(names.control_state(conversation_id)))
    assert fence == {"mode": "ai", "epoch": "2", "operator": ""}
    published = await wait_until(
        lambda: _len_at_least(control_events(bus, conversation_id), 2), what="both events"
    )
    assert [e["event_type"] for e in published] == [
        "conversation.taken_over",
        "conversation.handed_back",
    ]


async def test_resolve_then_a_customer_message_reopens_to_the_ai(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    resolved = await client.post(
        f"/api/v1/conversations/{conversation_id}/resolve", json={}, headers=auth(token)
    )
    assert (resolved.json()["mode"], resolved.json()["epoch"]) == ("resolved", 1)
    fence = await bus.redis.hgetall(bus.key(names.control_state(conversation_id)))
    assert (fence["mode"], fence["epoch"]) == ("ai", "1")  # nobody holds it: the AI may answer

    await customer_writes(bus, client, token, wa_id, text="one more thing")

    async def reopened() -> bool:
        r = await client.get(f"/api/v1/conversations/{conversation_id}", headers=auth(token))
        return bool(r.json()["mode"] == "ai")

    await wait_until(reopened, what="reopened")
    fence = await bus.redis.hgetall(bus.key(names.control_state(conversation_id)))
    assert (fence["mode"], fence["epoch"]) == ("ai", "1")  # same epoch: the AI's reply passes

    async def reopen_events() -> list[Event]:
        return [
            event
            for _, f in await bus.redis.xrange(bus.key(names.CONV_CONTROL))
            if f.get("conversation_id") == conversation_id
            and isinstance(
                event := parse_event(f["event_type"], int(f["schema_version"]), f["body"]),
                ConversationReopened,
            )
        ]

    # Dashboards and integrators see it: the live feed's mode_change, conv.control's event.
    [event] = await wait_until(reopen_events, what="conversation.reopened published")
    assert (event.payload.mode, event.payload.epoch) == (Mode.AI, 1)
    kind, body = feed.describe(event) or ("", {})
    assert (kind, body["mode"], body["epoch"]) == ("mode_change", "ai", 1)


async def test_takeover_of_an_unknown_customer(
    client: httpx.AsyncClient, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    missing = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    assert missing.status_code == 404
    body = {"wa_id": wa_id, "phone_number_id": PHONE_NUMBER_ID}
    created = await client.post("/api/v1/takeover", json=body, headers=auth(token))
    assert created.status_code == 200
    assert created.json()["mode"] == "operator"


async def test_customer_on_two_numbers_needs_phone_number_id(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    await customer_writes(bus, client, token, wa_id)
    await customer_writes(bus, client, token, wa_id, pnid="999")
    ambiguous = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    assert ambiguous.status_code == 422
    assert ambiguous.json()["error"] == "phone_number_id_required"
    body = {"wa_id": wa_id, "phone_number_id": "999"}
    assert (
        await client.post("/api/v1/takeover", json=body, headers=auth(token))
    ).status_code == 200


async def _len_at_least(probe: object, n: int) -> list[dict[str, object]] | None:
    items: list[dict[str, object]] = await probe  # type: ignore[misc]
    return items if len(items) >= n else None
