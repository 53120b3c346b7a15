"""One customer message is one trace: webhook → inbound → turn → command → sent."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from baton_devtools.supervisor import Stack
from baton_shared.events.envelope import trace_id_of
from baton_shared.streams import names
from baton_shared.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WA_ID = "5511987650801"


async def envelopes(redis: Redis, stack: Stack, stream: str) -> list[dict[str, Any]]:
    """Every event envelope on `stream` of the stack (its prefix)."""
    entries = await redis.xrange(f"{stack.env['REDIS_PREFIX']}{stream}")
    return [json.loads(fields["body"]) for _id, fields in entries]


def concerns(envelope: dict[str, Any], wa_id: str) -> bool:
    """Whether an envelope is about `wa_id` (the webhook's raw body mentions it)."""
    payload = envelope["payload"]
    if envelope["event_type"] == "webhook.received":  # the customer's message, not a status
        return f'"from":"{wa_id}"' in payload["body"].replace(" ", "")
    return wa_id in (payload.get("wa_id"), payload.get("to"))


async def the_chain(redis: Redis, stack: Stack) -> dict[str, dict[str, Any]] | None:
    """The customer's events by type, once all five are there."""
    wanted = {
        names.WA_WEBHOOKS: "webhook.received",
        names.WA_INBOUND: "inbound.message_received",
        names.CONV_TURNS: "conversation.turn_ready",
        names.CONV_TURNS_DONE: "conversation.turn_completed",
        names.WA_OUTBOUND: "outbound.message_requested",
        names.WA_OUTBOUND_RESULTS: "outbound.message_sent",
    }
    found: dict[str, dict[str, Any]] = {}
    for stream, event_type in wanted.items():
        for envelope in await envelopes(redis, stack, stream):
            if envelope["event_type"] == event_type and concerns(envelope, WA_ID):
                found.setdefault(event_type, envelope)  # the first: later ones are other turns
    return found if len(found) == len(wanted) else None


async def test_one_trace_id_from_webhook_to_send(stack: Stack) -> None:
    redis = Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            sent = await client.post(
                f"{stack.url('wa-emulator')}/_emulator/inbound",
                json={"from": WA_ID, "text": "Where is my parcel?", "name": "Rui"},
            )
            assert sent.status_code == 200, sent.text
        chain = await wait_until(
            lambda: the_chain(redis, stack), timeout=60, what="the message is sent"
        )
    finally:
        await redis.aclose()

    traceparents = {t: e["traceparent"] for t, e in chain.items()}
    trace_ids = {trace_id_of(tp) for tp in traceparents.values()}
    assert None not in trace_ids, traceparents
    assert len(trace_ids) == 1, traceparents
    # Every hop has a span of its own: the producing span is each event's parent ...
    hops = [
        "webhook.received",
        "inbound.message_received",
        "conversation.turn_ready",
        "outbound.message_requested",
        "outbound.message_sent",
    ]
    assert len({traceparents[t] for t in hops}) == len(hops), traceparents
    # ... and events emitted while one event is handled share that handling span as parent.
    assert traceparents["conversation.turn_completed"] == traceparents["outbound.message_requested"]
