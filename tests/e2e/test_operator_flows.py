"""Operator flows against the running services: takeover, operator message, handback, the
takeover-versus-AI-reply race, concurrent takeovers, and the live feed's order.

Every test has customers (wa_ids) of its own; operators are created through the API with the
bootstrap admin token.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from baton_devtools.supervisor import Stack
from baton_shared.events.ids import conversation_id_for
from baton_shared.testing import wait_until

from .conftest import E2E_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = {"Authorization": f"Bearer {E2E_ENV['BATON_BOOTSTRAP_ADMIN_TOKEN']}"}
PHONE_NUMBER_ID = "100000000000001"  # the WhatsApp emulator's default business number
# Below AGENT_TURN_TIMEOUT_SECONDS (3 s in E2E_ENV, itself below RECLAIM_IDLE_MS).
MODEL_DELAY_MS = 1200


def new_wa_id() -> str:
    """A customer private to one test."""
    return "55119" + "".join(secrets.choice("0123456789") for _ in range(8))


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of an operator token."""
    return {"Authorization": f"Bearer {token}"}


class Api:
    """The stack's HTTP surfaces a test drives: the emulators and the operator API."""

    def __init__(self, client: httpx.AsyncClient, stack: Stack) -> None:
        self.client = client
        self.wa = stack.url("wa-emulator")
        self.gemini = stack.url("gemini-emulator")
        self.ops = stack.url("operator-api")

    async def customer_says(self, wa_id: str, text: str) -> None:
        """A customer message, delivered by the emulator to the ingress webhook."""
        sent = await self.client.post(
            f"{self.wa}/_emulator/inbound", json={"from": wa_id, "text": text, "name": "Bia"}
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["webhook_status"] == 200

    async def sent_to(self, wa_id: str) -> list[dict[str, Any]]:
        """Every message the WhatsApp emulator accepted for `wa_id`, oldest first."""
        r = await self.client.get(f"{self.wa}/_emulator/messages", params={"to": wa_id})
        r.raise_for_status()
        messages: list[dict[str, Any]] = r.json()
        return messages

    async def texts_to(self, wa_id: str) -> list[str]:
        """The bodies of the text messages sent to `wa_id`."""
        return [m["body"]["text"]["body"] for m in await self.sent_to(wa_id) if m["type"] == "text"]

    async def model_requests(self) -> list[str]:
        """The Gemini emulator's recorded model calls, each body as JSON text."""
        r = await self.client.get(f"{self.gemini}/_emulator/requests")
        r.raise_for_status()
        return [json.dumps(item["body"], ensure_ascii=False) for item in r.json()]

    async def new_operator(self, prefix: str) -> tuple[str, str]:
        """A new operator (name, token)."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        r = await self.client.post(
            f"{self.ops}/api/v1/operators", json={"name": name}, headers=ADMIN
        )
        assert r.status_code == 201, r.text
        return name, r.json()["token"]

    async def post(self, path: str, token: str, body: dict[str, Any]) -> httpx.Response:
        """POST to the operator API as the operator owning `token`."""
        return await self.client.post(f"{self.ops}{path}", json=body, headers=bearer(token))

    async def known(self, conversation_id: str) -> bool:
        """Whether the operator API's read model has the conversation."""
        r = await self.client.get(
            f"{self.ops}/api/v1/conversations/{conversation_id}", headers=ADMIN
        )
        return r.status_code == 200

    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's transcript (first page is enough for these tests)."""
        r = await self.client.get(
            f"{self.ops}/api/v1/conversations/{conversation_id}/messages",
            params={"limit": 200},
            headers=ADMIN,
        )
        r.raise_for_status()
        items: list[dict[str, Any]] = r.json()["items"]
        return items


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    """A client for the running stack."""
    async with httpx.AsyncClient(timeout=15) as client:
        yield Api(client, stack)


async def test_takeover_operator_message_handback_and_the_ai_reads_the_operator(
    api: Api,
) -> None:
    wa_id = new_wa_id()
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    name, token = await api.new_operator("olga")

    await api.customer_says(wa_id, "Hi, is order #7001 shipped?")
    await wait_until(lambda: api.texts_to(wa_id), timeout=60, what="the AI's first reply")
    await wait_until(lambda: api.known(conversation_id), what="operator-api knows it")

    taken = await api.post("/api/v1/takeover", token, {"wa_id": wa_id, "reason": "VIP"})
    assert taken.status_code == 200, taken.text
    assert (taken.json()["mode"], taken.json()["operator"]) == ("operator", name)

    promise = f"Olga here: order #7001 leaves tomorrow, voucher V{wa_id[-4:]}."
    written = await api.post("/api/v1/operator-message", token, {"wa_id": wa_id, "text": promise})
    assert written.status_code == 202, written.text
    await wait_until(
        lambda: _contains(api.texts_to(wa_id), promise),
        timeout=30,
        what="the operator's message reaches WhatsApp",
    )

    async def operator_message_sent() -> bool:
        return any(
            m["author"] == "operator" and m["status"] in ("sent", "delivered", "read")
            for m in await api.transcript(conversation_id)
        )

    await wait_until(operator_message_sent, timeout=30, what="the operator's message is sent")

    handed = await api.post("/api/v1/handback", token, {"phone": f"+{wa_id}", "note": "done"})
    assert handed.status_code == 200, handed.text
    assert (handed.json()["mode"], handed.json()["operator"]) == ("ai", None)

    question = "Thanks! And when does the voucher expire?"
    await api.customer_says(wa_id, question)
    await wait_until(
        lambda: _contains(api.texts_to(wa_id), question),
        timeout=60,
        what="the AI answers again after handback",
    )
    prompts = [p for p in await api.model_requests() if question in p]
    assert prompts, "the model was asked about the customer's new question"
    assert promise in prompts[-1]  # the AI resumes with the operator's message in its thread

    async def authors() -> list[str] | None:
        found = [m["author"] for m in await api.transcript(conversation_id)]
        return found if found.count("ai") == 2 else None  # the read model lags the send

    transcript = await wait_until(authors, timeout=30, what="the transcript shows both answers")
    assert transcript.count("operator") == 1


async def _contains(texts: Any, needle: str) -> bool:
    return any(needle in text for text in await texts)


async def test_after_a_resolve_the_next_customer_message_gets_exactly_one_ai_reply(
    api: Api,
) -> None:
    wa_id = new_wa_id()
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    _, token = await api.new_operator("rita")

    await api.customer_says(wa_id, "Hi, my parcel #4410 is missing")
    await wait_until(lambda: api.texts_to(wa_id), timeout=60, what="the AI's first reply")
    await wait_until(lambda: api.known(conversation_id), what="operator-api knows it")
    taken = await api.post("/api/v1/takeover", token, {"wa_id": wa_id})
    assert taken.status_code == 200, taken.text
    promise = f"Rita here: parcel #4410 is re-sent, code R{wa_id[-4:]}."
    written = await api.post("/api/v1/operator-message", token, {"wa_id": wa_id, "text": promise})
    assert written.status_code == 202, written.text
    await wait_until(
        lambda: _contains(api.texts_to(wa_id), promise), timeout=30, what="the operator's message"
    )

    resolved = await api.post(f"/api/v1/conversations/{conversation_id}/resolve", token, {})
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["mode"], resolved.json()["epoch"]) == ("resolved", 2)

    question = "Thanks! Will it arrive before Friday?"
    await api.customer_says(wa_id, question)
    await wait_until(
        lambda: _contains(api.texts_to(wa_id), question),
        timeout=60,
        what="the AI answers after the resolve",
    )
    # A later message, answered in order after it: a second reply to the question would
    # have left before this one's (one turn in flight, messages leave in order).
    await api.customer_says(wa_id, "And the tracking link?")
    await wait_until(
        lambda: _contains(api.texts_to(wa_id), "the tracking link?"),
        timeout=60,
        what="the AI answers the next message",
    )

    texts = await api.texts_to(wa_id)
    assert sum(question in t for t in texts) == 1
    assert [t for t in texts if promise in t] == [promise]
    assert len(texts) == 4  # the first reply, the operator's, and one reply per message
    prompts = [p for p in await api.model_requests() if question in p]
    assert promise in prompts[0]  # the AI resumes with the operator's message in its thread
    state = await api.client.get(f"{api.ops}/api/v1/conversations/{conversation_id}", headers=ADMIN)
    assert (state.json()["mode"], state.json()["epoch"]) == ("ai", 2)  # reopened, same epoch


async def test_takeover_while_the_model_thinks_suppresses_the_ai_reply(api: Api) -> None:
    wa_id = new_wa_id()
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    _, token = await api.new_operator("rafa")
    text = f"Slow question from {wa_id}: can I change my address?"

    fault = await api.client.post(
        f"{api.gemini}/_emulator/faults", json={"delay_ms": MODEL_DELAY_MS, "count": 1}
    )
    assert fault.status_code == 200, fault.text
    try:
        await api.customer_says(wa_id, text)

        async def thinking() -> bool:
            return any(text in p for p in await api.model_requests())

        await wait_until(thinking, timeout=60, what="the model is called for the turn")
        taken = await api.post(
            "/api/v1/takeover", token, {"wa_id": wa_id, "phone_number_id": PHONE_NUMBER_ID}
        )
        assert taken.status_code == 200, taken.text
        sent_at_takeover = await api.sent_to(wa_id)
    finally:
        await api.client.delete(f"{api.gemini}/_emulator/faults")

    async def suppressed() -> list[dict[str, Any]]:
        return [
            m
            for m in await api.transcript(conversation_id)
            if m["author"] == "ai" and m["status"] == "suppressed"
        ]

    (late,) = await wait_until(suppressed, timeout=60, what="the AI's late reply is suppressed")
    assert "can I change my address?" in (late["text"] or "")
    assert sent_at_takeover == []
    assert await api.sent_to(wa_id) == []  # nothing from the AI after the takeover's 200


async def test_concurrent_takeovers_by_two_operators_exactly_one_wins(api: Api) -> None:
    wa_id = new_wa_id()
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    (ann, ann_token), (ben, ben_token) = [await api.new_operator(n) for n in ("ann", "ben")]
    await api.customer_says(wa_id, "I need help with a refund")
    await wait_until(lambda: api.known(conversation_id), timeout=30, what="operator-api knows it")

    answers = await asyncio.gather(
        *(api.post("/api/v1/takeover", t, {"wa_id": wa_id}) for t in (ann_token, ben_token))
    )

    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    winner = next(a.json()["operator"] for a in answers if a.status_code == 200)
    assert winner in (ann, ben)
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json()["error"] == "conflict"
    state = await api.client.get(f"{api.ops}/api/v1/conversations/{conversation_id}", headers=ADMIN)
    assert (state.json()["operator"], state.json()["epoch"]) == (winner, 1)


class Feed:
    """An open `GET /api/v1/events` stream, read into `events` by a background task."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.last_id: str | None = None

    async def read(self, response: httpx.Response) -> None:
        """Parse Server-Sent Events until the stream ends or the task is cancelled."""
        kind, data, event_id = "", "", ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data = line.partition(":")[2].strip()
            elif line.startswith("id:"):
                event_id = line.partition(":")[2].strip()
            elif line == "" and data:
                self.events.append({"kind": kind, "id": event_id, **json.loads(data)})
                self.last_id = event_id
                kind, data, event_id = "", "", ""

    def kinds(self) -> list[str]:
        """The kinds of the events received so far (statuses left out)."""
        return [e["kind"] for e in self.events if e["kind"] != "status"]


async def test_live_feed_delivers_a_conversations_events_in_order(api: Api) -> None:
    wa_id = new_wa_id()
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    _, token = await api.new_operator("fay")
    await api.customer_says(wa_id, "Do you deliver on Sundays?")
    await wait_until(lambda: api.texts_to(wa_id), timeout=60, what="the AI's reply")

    feed = Feed()
    # From the start of the streams (Last-Event-ID), then live on the same connection.
    headers = {**ADMIN, "Last-Event-ID": "0-0,0-0,0-0"}
    async with api.client.stream(
        "GET",
        f"{api.ops}/api/v1/events",
        params={"conversation_id": conversation_id},
        headers=headers,
        timeout=httpx.Timeout(15, read=None),
    ) as response:
        assert response.status_code == 200
        reader = asyncio.create_task(feed.read(response))
        try:

            async def caught_up() -> bool:
                return feed.kinds()[:2] == ["message_in", "message_out"]

            await wait_until(caught_up, timeout=30, what="the feed replays the history")

            for path in ("/api/v1/takeover", "/api/v1/handback", "/api/v1/takeover"):
                answer = await api.post(path, token, {"wa_id": wa_id})
                assert answer.status_code == 200, answer.text
            later = "Sunday it is, thanks"
            assert (
                await api.post("/api/v1/operator-message", token, {"wa_id": wa_id, "text": later})
            ).status_code == 202

            async def all_arrived() -> bool:
                return feed.kinds().count("message_out") == 2

            await wait_until(all_arrived, timeout=30, what="the live events arrive")
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    assert {e["conversation_id"] for e in feed.events} == {conversation_id}
    assert feed.kinds() == [
        "message_in",
        "message_out",
        "mode_change",
        "mode_change",
        "mode_change",
        "message_out",
    ]
    changes = [(e["mode"], e["epoch"]) for e in feed.events if e["kind"] == "mode_change"]
    assert changes == [("operator", 1), ("ai", 2), ("operator", 3)]
    outs = [e for e in feed.events if e["kind"] == "message_out"]
    assert [o["author"] for o in outs] == ["ai", "operator"]
    assert outs[1]["text"] == later
    positions = [[_position(p) for p in e["id"].split(",")] for e in feed.events]
    for before, after in itertools.pairwise(positions):  # no stream's position moves back
        assert all(a >= b for b, a in zip(before, after, strict=True))


def _position(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


async def test_a_customer_voice_note_is_downloaded_and_served(api: Api) -> None:
    """Emulator → ingress → operator-api: the voice note is fetched at once and served whole."""
    wa_id = new_wa_id()
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    sent = await api.client.post(
        f"{api.wa}/_emulator/inbound", json={"from": wa_id, "type": "audio", "voice": True}
    )
    assert sent.json()["webhook_status"] == 200, sent.text

    async def downloaded() -> dict[str, Any] | None:
        if not await api.known(conversation_id):
            return None
        media = [m["media"] for m in await api.transcript(conversation_id) if m["media"]]
        return media[0] if media and media[0]["status"] == "downloaded" else None

    media = await wait_until(downloaded, timeout=30, what="the voice note downloaded")
    assert media["voice"] is True
    r = await api.client.get(f"{api.ops}{media['url']}", headers=ADMIN)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("audio/ogg")
    assert r.content == f"emulated audio from {wa_id}".encode()
