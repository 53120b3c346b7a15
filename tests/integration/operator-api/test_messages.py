"""Operator messages: who may write, the 24-hour window, the command on `wa.outbound`, and
the transcript with delivery status moving only forward."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from baton_operator_api import feed
from baton_shared.events import (
    Author,
    DeliveryStatus,
    DeliveryStatusChanged,
    MessageFailed,
    MessageSent,
    OutboundKind,
    OutboundOutcome,
    PlatformError,
    utcnow,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import drained, wait_until

from .conftest import PHONE_NUMBER_ID, NewOperator, ai_outcome, auth, customer_writes, new_wa_id

pytestmark = pytest.mark.integration


async def outbound_commands(bus: Bus, wa_id: str) -> list[dict[str, object]]:
    """Commands to a customer on `wa.outbound`."""
    entries = await bus.redis.xrange(bus.key(names.WA_OUTBOUND))
    payloads = [json.loads(fields["body"])["payload"] for _, fields in entries]
    return [p for p in payloads if p["to"] == wa_id]


async def test_only_the_holder_may_write_and_the_command_goes_out(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    holder, other = await new_operator("hana"), await new_operator("ivan")
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, holder, wa_id)
    message = {"wa_id": wa_id, "text": "Hi, Hana here"}
    before = await client.post("/api/v1/operator-message", json=message, headers=auth(holder))
    assert before.status_code == 409
    assert "takeover" in before.json()["hint"]

    await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(holder))
    refused = await client.post("/api/v1/operator-message", json=message, headers=auth(other))
    accepted = await client.post("/api/v1/operator-message", json=message, headers=auth(holder))

    assert refused.status_code == 409
    assert accepted.status_code == 202
    command_id = accepted.json()["command_id"]
    commands = await wait_until(lambda: outbound_commands(bus, wa_id))
    assert commands[0]["command_id"] == command_id
    assert (commands[0]["author"], commands[0]["kind"], commands[0]["text"]) == (
        "operator",
        "text",
        "Hi, Hana here",
    )
    assert commands[0]["operator"] == "hana"

    # The sender reports: sent, delivered, then a late duplicate `sent` that must not regress.
    outcome = OutboundOutcome(
        command_id=command_id,
        phone_number_id=PHONE_NUMBER_ID,
        to=wa_id,
        author=Author.OPERATOR,
        kind=OutboundKind.TEXT,
        wa_message_id="wamid.out1",
    )
    delivered = outcome.model_copy(update={"status": DeliveryStatus.DELIVERED})
    for event in (
        MessageSent.create(outcome, producer="sender", conversation_id=conversation_id),
        DeliveryStatusChanged.create(delivered, producer="sender", conversation_id=conversation_id),
        MessageSent.create(outcome, producer="sender", conversation_id=conversation_id),
    ):
        await bus.publish(event)

    async def transcript() -> list[dict[str, object]] | None:
        r = await client.get(
            f"/api/v1/conversations/{conversation_id}/messages", headers=auth(holder)
        )
        items: list[dict[str, object]] = r.json()["items"]
        out = [m for m in items if m["direction"] == "out"]
        return items if out and out[0]["wa_message_id"] == "wamid.out1" else None

    items = await wait_until(transcript)
    await wait_until(lambda: _stream_drained(bus))
    items = await wait_until(transcript)
    assert [(m["author"], m["status"]) for m in items] == [
        ("customer", "received"),
        ("operator", "delivered"),
    ]


async def _stream_drained(bus: Bus) -> bool:
    return await drained(bus.redis, bus.key(names.WA_OUTBOUND_RESULTS))


async def test_compatibility_body_with_media_by_id(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    await customer_writes(bus, client, token, wa_id)
    await client.post("/api/v1/takeover", json={"phone": wa_id}, headers=auth(token))
    body = {
        "phone": f"+{wa_id}",
        "message": "your invoice",
        "media": {"id": "1234567890", "mime_type": "application/pdf"},
    }
    response = await client.post("/api/v1/operator-message", json=body, headers=auth(token))

    assert response.status_code == 202, response.text
    commands = await wait_until(lambda: outbound_commands(bus, wa_id))
    assert commands[0]["kind"] == "document"
    assert commands[0]["media"]["id"] == "1234567890"  # type: ignore[index]
    assert commands[0]["media"]["caption"] == "your invoice"  # type: ignore[index]


async def test_outside_the_window_free_form_is_refused_and_templates_pass(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    await customer_writes(bus, client, token, wa_id, at=utcnow() - timedelta(hours=25))
    await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))

    text = await client.post(
        "/api/v1/operator-message", json={"wa_id": wa_id, "text": "hello?"}, headers=auth(token)
    )
    template = {"name": "follow_up", "language": {"code": "en_US"}}
    templated = await client.post(
        "/api/v1/operator-message", json={"wa_id": wa_id, "template": template}, headers=auth(token)
    )

    assert text.status_code == 422
    assert text.json()["error"] == "window_closed"
    assert "template" in text.json()["hint"]
    assert templated.status_code == 202


async def test_typing_indicator_is_not_a_message_and_not_an_answer(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    # The agent shows "typing" on the customer's message before it answers: the transcript
    # holds no entry for it, and the customer is still waiting until the answer is sent.
    token = await new_operator("jo")
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    typing = ai_outcome(wa_id, "typing-1", kind=OutboundKind.TYPING)
    await bus.publish(
        MessageSent.create(typing, producer="sender", conversation_id=conversation_id)
    )
    await wait_until(lambda: _stream_drained(bus))

    async def conversation() -> dict[str, object]:
        r = await client.get(f"/api/v1/conversations/{conversation_id}", headers=auth(token))
        assert r.status_code == 200
        body: dict[str, object] = r.json()
        return body

    assert (await conversation())["waiting_since"] is not None
    r = await client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=auth(token))
    assert [m["author"] for m in r.json()["items"]] == ["customer"]


async def test_a_failed_message_shows_whatsapps_code_and_why(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator("kai")
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    refused = ai_outcome(
        wa_id,
        "refused-1",
        text="Your order ships today",
        status=DeliveryStatus.FAILED,
        reason="rejected",
        error=PlatformError(code=131026, title="Message undeliverable"),
    )
    failed = MessageFailed.create(refused, producer="sender", conversation_id=conversation_id)
    await bus.publish(failed)
    await wait_until(lambda: _stream_drained(bus))

    r = await client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=auth(token))
    [out] = [m for m in r.json()["items"] if m["direction"] == "out"]
    assert (out["status"], out["reason"], out["error_code"]) == ("failed", "rejected", 131026)
    assert out["error"] == (
        "Not sent: WhatsApp refused the message. WhatsApp error 131026: Message undeliverable."
    )
    kind, body = feed.describe(failed) or ("", {})
    assert (kind, body["error_code"], body["error"]) == ("status", 131026, out["error"])


async def test_without_a_templates_file_any_template_is_passed_on(
    client: httpx.AsyncClient, new_operator: NewOperator
) -> None:
    r = await client.get("/api/v1/templates", headers=auth(await new_operator()))
    assert r.json() == {"configured": False, "items": []}


async def test_a_conversation_says_until_when_free_form_messages_are_allowed(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    # A UI can offer the text box or the template picker without knowing WhatsApp's rule.
    name = f"op-{uuid.uuid4().hex[:8]}"
    token = await new_operator(name)
    wa_id = new_wa_id()
    wrote = utcnow() - timedelta(hours=25)
    conversation_id = await customer_writes(bus, client, token, wa_id, at=wrote)
    r = await client.get(f"/api/v1/conversations/{conversation_id}", headers=auth(token))
    closes = datetime.fromisoformat(r.json()["window_closes_at"])
    assert closes == datetime.fromisoformat(r.json()["last_inbound_at"]) + timedelta(hours=24)
    assert closes < utcnow()  # closed an hour ago: templates only

    taken = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    assert taken.json()["window_closes_at"] == r.json()["window_closes_at"]
    listed = await client.get(
        "/api/v1/conversations", params={"operator": name}, headers=auth(token)
    )
    [item] = listed.json()["items"]
    assert item["window_closes_at"] == r.json()["window_closes_at"]


async def test_a_retried_operator_message_is_sent_once(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    # The operator's tool timed out and sent the same message again (complaint #3): with the
    # client's id for the message, the retry gets the first command id and sends nothing.
    holder = await new_operator()
    wa_id = new_wa_id()
    await customer_writes(bus, client, holder, wa_id)
    await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(holder))
    message = {"wa_id": wa_id, "text": "Your refund is on its way", "client_id": "msg-1"}

    first = await client.post("/api/v1/operator-message", json=message, headers=auth(holder))
    again = await client.post("/api/v1/operator-message", json=message, headers=auth(holder))
    by_header = await client.post(
        "/api/v1/operator-message",
        json={"wa_id": wa_id, "text": "Your refund is on its way"},
        headers={**auth(holder), "Idempotency-Key": "msg-1"},
    )
    other = await client.post(
        "/api/v1/operator-message",
        json={**message, "client_id": "msg-2"},
        headers=auth(holder),
    )
    clash = await client.post(
        "/api/v1/operator-message",
        json=message,
        headers={**auth(holder), "Idempotency-Key": "msg-3"},
    )

    assert [r.status_code for r in (first, again, by_header, other)] == [202, 202, 202, 202]
    assert first.json()["command_id"] == again.json()["command_id"]
    assert by_header.json()["command_id"] == first.json()["command_id"]
    assert other.json()["command_id"] != first.json()["command_id"]
    assert clash.status_code == 422
    commands = await wait_until(lambda: _count_at_least(outbound_commands(bus, wa_id), 2))
    assert sorted(c["command_id"] for c in commands) == sorted(
        [first.json()["command_id"], other.json()["command_id"]]
    )


async def _count_at_least(found: Any, n: int) -> Any:
    items = await found
    return items if len(items) >= n else None
