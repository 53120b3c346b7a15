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
