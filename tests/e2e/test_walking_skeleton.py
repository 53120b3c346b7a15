"""One real conversation through all five services, driven through the WhatsApp emulator."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from baton_devtools.supervisor import Stack
from baton_shared.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def customer_writes(
    client: httpx.AsyncClient, stack: Stack, wa_id: str, text: str
) -> dict[str, Any]:
    """The customer `wa_id` sends `text` (signed webhook from the emulator); its answer."""
    sent = await client.post(
        f"{stack.url('wa-emulator')}/_emulator/inbound",
        json={"from": wa_id, "text": text, "name": "Ana"},
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["webhook_status"] == 200
    answer: dict[str, Any] = sent.json()
    return answer


async def replies_to(client: httpx.AsyncClient, stack: Stack, wa_id: str) -> list[dict[str, Any]]:
    """What the WhatsApp emulator recorded as sent to `wa_id`, text messages only."""
    response = await client.get(
        f"{stack.url('wa-emulator')}/_emulator/messages", params={"to": wa_id}
    )
    response.raise_for_status()
    return [m for m in response.json() if m["type"] == "text"]


async def test_a_customer_message_gets_one_ai_reply(stack: Stack) -> None:
    wa_id = "5511987650001"
    async with httpx.AsyncClient(timeout=10) as client:
        sent = await customer_writes(client, stack, wa_id, "Hello, is my order #5521 on its way?")

        replies = await wait_until(
            lambda: replies_to(client, stack, wa_id),
            timeout=60,
            what="the AI reply reaches WhatsApp",
        )
        assert len(replies) == 1
        body = replies[0]["body"]["text"]["body"]
        assert "order #5521" in body  # the scripted model quotes the customer's turn

        # Before answering, the agent marked the message read and showed "typing".
        reads = await client.get(
            f"{stack.url('wa-emulator')}/_emulator/reads", params={"to": wa_id}
        )
        reads.raise_for_status()
        assert [(r["type"], r["id"]) for r in reads.json()] == [
            ("typing_indicator", sent["message_id"])
        ]


async def test_the_ai_can_ask_with_reply_buttons(stack: Stack) -> None:
    wa_id = "5511987650002"
    async with httpx.AsyncClient(timeout=10) as client:
        await customer_writes(client, stack, wa_id, "What are my options?")

        async def questions() -> list[dict[str, Any]]:
            response = await client.get(
                f"{stack.url('wa-emulator')}/_emulator/messages", params={"to": wa_id}
            )
            response.raise_for_status()
            return [m for m in response.json() if m["type"] == "interactive"]

        [question] = await wait_until(questions, timeout=60, what="the buttons reach WhatsApp")
        interactive = question["body"]["interactive"]
        assert interactive["type"] == "button"
        assert [b["reply"]["title"] for b in interactive["action"]["buttons"]] == [
            "Pickup",
            "Delivery",
        ]


async def test_a_message_whatsapp_delivers_twice_gets_one_reply(stack: Stack) -> None:
    # Invariant 2 through every service: the second delivery of a webhook (WhatsApp retries
    # when our 200 was lost) is a duplicate in ingress and goes no further.
    wa_id = "5511987650003"
    async with httpx.AsyncClient(timeout=10) as client:
        first = await customer_writes(client, stack, wa_id, "Where is my parcel?")
        await wait_until(lambda: replies_to(client, stack, wa_id), timeout=60, what="a reply")
        again = await client.post(
            f"{stack.url('wa-emulator')}/_emulator/inbound",
            json={"from": wa_id, "text": "Where is my parcel?", "message_id": first["message_id"]},
        )
        assert again.json()["webhook_status"] == 200  # acknowledged, as WhatsApp expects
        # A later message: its turn comes after anything the duplicate could have started
        # (one turn in flight per conversation, sent in order), so once it is answered, any
        # second answer to the first would be there too.
        await customer_writes(client, stack, wa_id, "It was order #77")

        async def two_replies() -> list[dict[str, Any]] | None:
            replies = await replies_to(client, stack, wa_id)
            return replies if len(replies) >= 2 else None

        replies = await wait_until(two_replies, timeout=60, what="the second reply")
        bodies = [r["body"]["text"]["body"] for r in replies]
        assert len(bodies) == 2, bodies
        assert "parcel" in bodies[0]
        assert "#77" in bodies[1]
        assert "parcel" not in bodies[1]  # the duplicate did not join the later turn
