"""Webhooks that try to break the ingress service: every shape the reference allows, repeats
and races, a worker killed mid-batch, and bad parts beside good ones (invariants 1, 2, 8).
The tests named for a fault were written against one, each fixed since."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from sqlalchemy import text as sa_text

from baton_ingress.api.routes.webhook import webhook_event_id
from baton_ingress.handlers.webhook_received import WebhookReceivedHandler
from baton_ingress.signature import sign
from baton_shared.db import Database, OutboxRelay
from baton_shared.events import (
    DeliveryStatus,
    MessageReceived,
    MessageType,
    PlatformErrorReceived,
    StatusReceived,
    WebhookBody,
    WebhookReceived,
    utcnow,
)
from baton_shared.streams import names
from baton_shared.streams.bus import entry_fields
from baton_shared.streams.consumer import Delivery
from baton_shared.streams.dead_letters import DeadLetters
from baton_shared.testing import wait_until

from .conftest import SECRET

pytestmark = pytest.mark.integration

NUMBER = "420123456789012"
OTHER_NUMBER = "420999999999999"
CUSTOMER = "447700900123"


# ---------------------------------------------------------------------------------------------
# helpers


def change(number: str = NUMBER, **value: Any) -> dict[str, Any]:
    return {
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15557654321", "phone_number_id": number},
            **value,
        },
    }


def body_of(*entries: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "310987654321098", "changes": c} for c in entries],
        }
    ).encode()


def text_message(wamid: str, text: str, sender: str = CUSTOMER, ts: int = 1767261600) -> dict:
    return {
        "from": sender,
        "id": wamid,
        "timestamp": str(ts),
        "type": "text",
        "text": {"body": text},
    }


def contacts(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"profile": {"name": name}, "wa_id": wa_id} for wa_id, name in pairs]


def webhook_event(body: bytes) -> WebhookReceived:
    """The event the request path appends for `body`."""
    return WebhookReceived.create(
        WebhookBody(body=body.decode(), signature="sha256=x", received_at=utcnow()),
        producer="ingress",
        event_id=webhook_event_id(body),
    )


async def messages_of(harness: Any) -> list[MessageReceived]:
    return [e for e in await harness.events(names.WA_INBOUND) if isinstance(e, MessageReceived)]


async def statuses_of(harness: Any) -> list[Any]:
    return await harness.events(names.WA_STATUSES)


async def dlq(harness: Any) -> list[dict[str, str]]:
    key = harness.bus.key(names.dlq(names.WA_WEBHOOKS))
    return [fields for _, fields in await harness.bus.redis.xrange(key)]


async def pending_webhooks(harness: Any) -> int:
    key = harness.bus.key(names.WA_WEBHOOKS)
    with contextlib.suppress(Exception):
        return int((await harness.bus.redis.xpending(key, names.GROUP_INGRESS))["pending"])
    return -1


async def outbox_rows(harness: Any) -> int:
    db = Database(harness.database_url, "ingress", pool_size=1)
    try:
        async with db.session() as session:
            return int(await session.scalar(sa_text("SELECT count(*) FROM outbox")) or 0)
    finally:
        await db.dispose()


async def settled(harness: Any, body: bytes) -> None:
    """`body` archived (its batch committed) and the outbox published."""
    await wait_until(lambda: harness.archived(body), what="webhook archived")

    async def empty() -> bool:
        return await outbox_rows(harness) == 0

    await wait_until(empty, what="outbox published")


# ---------------------------------------------------------------------------------------------
# Webhook payloads valid per the reference


async def test_every_reference_type_across_entries_and_changes_is_emitted_in_order(
    harness: Any,
) -> None:
    """Two entries, three changes (messages, statuses, errors, unknown fields, an ignored
    field), every message type of reference 2.3: each becomes one event, with its text."""
    t = harness.tag
    w = lambda n: f"wamid.{t}-{n}"  # noqa: E731
    media = {"mime_type": "image/jpeg", "sha256": "x=", "id": "1892736450918273"}
    messages = [
        text_message(w(1), "hello", ts=1767261601) | {"context": {"forwarded": True}},
        {
            "from": CUSTOMER,
            "id": w(2),
            "timestamp": "1767261602",
            "type": "image",
            "image": media | {"caption": "Box arrived crushed"},
        },
        {
            "from": CUSTOMER,
            "id": w(3),
            "timestamp": "1767261603",
            "type": "audio",
            "audio": {
                "mime_type": "audio/ogg; codecs=opus",
                "sha256": "x=",
                "id": "2039",
                "voice": True,
            },
        },
        {
            "from": CUSTOMER,
            "id": w(4),
            "timestamp": "1767261604",
            "type": "location",
            "location": {"latitude": 51.50135, "longitude": -0.14189, "name": "Depot North"},
        },
        {
            "from": CUSTOMER,
            "id": w(5),
            "timestamp": "1767261605",
            "type": "interactive",
            "context": {"from": "15557654321", "id": "wamid.OURS1"},
            "interactive": {
                "type": "list_reply",
                "list_reply": {"id": "r1", "title": "Refund", "description": "d"},
            },
        },
        {
            "from": CUSTOMER,
            "id": w(6),
            "timestamp": "1767261606",
            "type": "reaction",
            "reaction": {"message_id": "wamid.OURS2"},
        },  # removal: no emoji
        {
            "from": CUSTOMER,
            "id": w(7),
            "timestamp": "1767261607",
            "type": "unsupported",
            "errors": [{"code": 131051, "title": "Message type unknown"}],
            "unsupported": {"type": "poll_creation"},
        },
        {
            "from": CUSTOMER,
            "id": w(8),
            "timestamp": "1767261608",
            "type": "edit",
            "edit": {"original_message_id": w(1), "message": {"type": "text"}},
            "future_field": {"nested": [1, 2, {"x": None}]},
        },
        {
            "from": CUSTOMER,
            "id": w(9),
            "timestamp": "1767261609",
            "type": "order",
            "order": {
                "catalog_id": "c",
                "text": "asap",
                "product_items": [
                    {
                        "product_retailer_id": "sku1",
                        "quantity": 2,
                        "item_price": 9.5,
                        "currency": "EUR",
                    }
                ],
            },
        },
        {
            "id": w(10),
            "timestamp": "1767261610",
            "type": "system",
            "system": {
                "body": "Maria changed her number",
                "wa_id": "447700900999",
                "type": "user_changed_number",
            },
            "from": CUSTOMER,
        },
    ]
    statuses = [
        {
            "id": f"wamid.{t}-out1",
            "status": "sent",
            "timestamp": "1767262201",
            "recipient_id": CUSTOMER,
            "pricing": {
                "billable": True,
                "pricing_model": "PMP",
                "type": "regular",
                "category": "service",
            },
        },
        {
            "id": f"wamid.{t}-out1",
            "status": "played",
            "timestamp": "1767262202",
            "recipient_id": CUSTOMER,
        },
        {
            "id": f"wamid.{t}-out2",
            "status": "failed",
            "timestamp": "1767262203",
            "recipient_id": CUSTOMER,
            "errors": [
                {
                    "code": 131047,
                    "title": "Re-engagement message",
                    "error_data": {"details": "more than 24 hours"},
                }
            ],
        },
        {
            "id": f"wamid.{t}-out3",
            "status": "paused_for_review",
            "timestamp": "1767262204",
            "recipient_id": CUSTOMER,
        },
    ]
    body = body_of(
        [
            change(
                contacts=contacts((CUSTOMER, "Maria")),
                messages=messages[:5],
                unknown_value_field={"a": 1},
            ),
            {"field": "message_template_status_update", "value": {"event": "APPROVED"}},
        ],
        [
            change(contacts=contacts((CUSTOMER, "Maria")), messages=messages[5:]),
            change(statuses=statuses, errors=[{"code": 130429, "title": f"Rate limit hit {t}"}]),
        ],
    )
    async with harness.client() as client:
        assert (await harness.post(client, body)).status_code == 200
        await settled(harness, body)
    got = await messages_of(harness)
    assert [m.payload.message_id for m in got] == [w(n) for n in range(1, 11)]
    by_id = {m.payload.message_id: m.payload for m in got}
    assert by_id[w(1)].text == "hello"
    assert by_id[w(2)].text == "Box arrived crushed"
    assert by_id[w(2)].media is not None
    assert by_id[w(2)].media.id == "1892736450918273"
    assert by_id[w(3)].media is not None
    assert by_id[w(3)].media.voice is True
    assert "Depot North" in (by_id[w(4)].text or "")
    assert by_id[w(5)].text == "Refund"
    assert by_id[w(5)].context_message_id == "wamid.OURS1"
    assert by_id[w(6)].text is None
    assert by_id[w(6)].context_message_id == "wamid.OURS2"
    assert by_id[w(7)].type == MessageType.UNSUPPORTED
    assert by_id[w(8)].type == MessageType.UNKNOWN  # kept raw, not dropped
    assert by_id[w(8)].raw["future_field"] == {"nested": [1, 2, {"x": None}]}
    assert "2 x sku1" in (by_id[w(9)].text or "")
    assert by_id[w(10)].type == MessageType.SYSTEM
    assert all(m.payload.customer_name == "Maria" for m in got)
    status_events = await statuses_of(harness)
    kinds = [
        (e.payload.message_id, e.payload.status)
        for e in status_events
        if isinstance(e, StatusReceived)
    ]
    assert kinds == [
        (f"wamid.{t}-out1", DeliveryStatus.SENT),
        (f"wamid.{t}-out1", DeliveryStatus.PLAYED),
        (f"wamid.{t}-out2", DeliveryStatus.FAILED),
        (f"wamid.{t}-out3", DeliveryStatus.UNKNOWN),
    ]
    failed = next(
        e
        for e in status_events
        if isinstance(e, StatusReceived) and e.payload.status == DeliveryStatus.FAILED
    )
    assert [err.code for err in failed.payload.errors] == [131047]
    errors = [
        e
        for e in status_events
        if isinstance(e, PlatformErrorReceived) and t in e.model_dump_json()
    ]
    assert len(errors) == 1
    assert errors[0].payload.errors[0].code == 130429
    assert await dlq(harness) == []


async def test_a_thousand_updates_in_one_body_are_all_emitted_in_body_order(
    harness: Any,
) -> None:
    """Meta batches up to 1000 updates per POST, bodies up to 3 MB: every one is emitted,
    once, in order, with its whole text."""
    wamids = [f"wamid.{harness.tag}-{n:04d}" for n in range(1000)]
    texts = [f"m{n} " + "é" * 1400 for n in range(1000)]  # ~3 MB of UTF-8 (escaped: more)
    body = body_of(
        [
            change(
                contacts=contacts((CUSTOMER, "Maria")),
                messages=[text_message(w, t) for w, t in zip(wamids, texts, strict=True)],
            )
        ]
    )
    body = json.dumps(json.loads(body), ensure_ascii=False).encode()
    assert 2_500_000 < len(body) < 4 * 1024 * 1024
    async with harness.client() as client:
        assert (await harness.post(client, body)).status_code == 200
        await settled(harness, body)
    got = await messages_of(harness)
    assert [m.payload.message_id for m in got] == wamids
    assert [m.payload.text for m in got] == texts
    assert len({m.event_id for m in got}) == 1000


async def test_raw_utf8_body_signed_over_its_bytes_keeps_its_text(harness: Any) -> None:
    """A body with raw (unescaped) UTF-8 is signed over its exact bytes; the text survives,
    and the same content re-serialised with escapes is another body with the same wamid."""
    wamid = f"wamid.{harness.tag}-utf8"
    text = "Où est ma commande ? 🚚 — спасибо"
    raw = body_of([change(messages=[text_message(wamid, text)])])
    raw = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    assert "🚚".encode() in raw
    escaped = json.dumps(json.loads(raw), ensure_ascii=True).encode()
    async with harness.client() as client:
        assert (await harness.post(client, raw)).status_code == 200
        # signed over other bytes than those sent: refused, never re-serialised to check
        bad = {"X-Hub-Signature-256": sign(escaped, SECRET)}
        assert (await client.post("/webhook", content=raw, headers=bad)).status_code == 403
        assert (await harness.post(client, escaped)).status_code == 200
        await settled(harness, raw)
        await settled(harness, escaped)
    got = await messages_of(harness)
    assert [m.payload.text for m in got] == [text]


# ---------------------------------------------------------------------------------------------
# Duplicates (invariant 2)


async def test_the_same_webhook_posted_concurrently_gives_one_event(harness: Any) -> None:
    wamid = f"wamid.{harness.tag}-conc"
    body = body_of([change(messages=[text_message(wamid, "once")])])
    async with harness.client() as client:
        answers = await asyncio.gather(*(harness.post(client, body) for _ in range(20)))
        assert [a.status_code for a in answers] == [200] * 20
        await settled(harness, body)

        async def all_handled() -> bool:
            return await pending_webhooks(harness) == 0

        await wait_until(all_handled, what="all 20 entries acknowledged")
        await settled(harness, body)
    assert [m.payload.message_id for m in await messages_of(harness)] == [wamid]
    assert await harness.archived(body) == 1


async def test_two_workers_racing_on_one_wamid_in_two_bodies_emit_it_once(
    harness: Any,
) -> None:
    """Meta re-batches: one message in two different bodies, handled at the same moment by two
    worker transactions; the message is emitted once, each status once."""
    wamid = f"wamid.{harness.tag}-race"
    status = {
        "id": f"wamid.{harness.tag}-out",
        "status": "read",
        "timestamp": "1767262201",
        "recipient_id": CUSTOMER,
    }
    first = body_of([change(messages=[text_message(wamid, "hi")], statuses=[status])])
    second = body_of([change(statuses=[status], messages=[text_message(wamid, "hi")])])
    assert first != second
    dbs = [Database(harness.database_url, "ingress", pool_size=2) for _ in range(2)]
    try:
        handlers = [WebhookReceivedHandler(db, harness.bus, harness.settings()) for db in dbs]
        for _ in range(3):  # several rounds: the race has more than one interleaving
            await asyncio.gather(
                handlers[0].handle_batch(
                    [(webhook_event(first), Delivery(names.WA_WEBHOOKS, "1-0", 1))]
                ),
                handlers[1].handle_batch(
                    [(webhook_event(second), Delivery(names.WA_WEBHOOKS, "2-0", 1))]
                ),
            )
        await OutboxRelay(dbs[0], harness.bus).publish_batch()
    finally:
        for db in dbs:
            await db.dispose()
    assert [m.payload.message_id for m in await messages_of(harness)] == [wamid]
    assert len([e for e in await statuses_of(harness) if isinstance(e, StatusReceived)]) == 1
    assert (await harness.archived(first), await harness.archived(second)) == (1, 1)


# ---------------------------------------------------------------------------------------------
# A worker killed between reading and acknowledging (invariants 1-2)


async def test_entries_read_by_a_dead_worker_are_reclaimed_in_order_and_emitted_once(
    harness: Any,
) -> None:
    """A worker read three bodies and died before its commit; another worker reclaims them
    once idle and emits each message once, in stream order."""
    bodies = [
        body_of(
            [
                change(
                    messages=[text_message(f"wamid.{harness.tag}-k{n}", f"k{n}", ts=1767261600 + n)]
                )
            ]
        )
        for n in range(3)
    ]
    stream = harness.bus.key(names.WA_WEBHOOKS)
    await harness.bus.redis.xgroup_create(stream, names.GROUP_INGRESS, id="0", mkstream=True)
    for body in bodies:
        await harness.bus.redis.xadd(stream, entry_fields(webhook_event(body)))
    got = await harness.bus.redis.xreadgroup(
        names.GROUP_INGRESS, "dead-worker", {stream: ">"}, count=10
    )
    assert len(got[0][1]) == 3  # read, never acknowledged: the process died
    settings = harness.settings(RECLAIM_IDLE_MS=100)
    async with harness.client(settings):
        for body in bodies:
            await settled(harness, body)

        async def acked() -> bool:
            return await pending_webhooks(harness) == 0

        await wait_until(acked, what="reclaimed entries acknowledged")
    got_messages = await messages_of(harness)
    assert [m.payload.text for m in got_messages] == ["k0", "k1", "k2"]


async def test_a_worker_killed_after_its_commit_before_its_ack_emits_nothing_twice(
    harness: Any,
) -> None:
    body = body_of([change(messages=[text_message(f"wamid.{harness.tag}-ca", "committed")])])
    stream = harness.bus.key(names.WA_WEBHOOKS)
    await harness.bus.redis.xgroup_create(stream, names.GROUP_INGRESS, id="0", mkstream=True)
    await harness.bus.redis.xadd(stream, entry_fields(webhook_event(body)))
    [[_, [(entry_id, _fields)]]] = await harness.bus.redis.xreadgroup(
        names.GROUP_INGRESS, "dead-worker", {stream: ">"}, count=10
    )
    db = Database(harness.database_url, "ingress", pool_size=1)
    try:  # the dead worker's batch: committed (outbox included), then it died before XACK
        handler = WebhookReceivedHandler(db, harness.bus, harness.settings())
        await handler.handle_batch(
            [(webhook_event(body), Delivery(names.WA_WEBHOOKS, entry_id, 1))]
        )
    finally:
        await db.dispose()
    async with harness.client(harness.settings(RECLAIM_IDLE_MS=100)):

        async def acked() -> bool:
            return await pending_webhooks(harness) == 0

        await wait_until(acked, what="the dead worker's entry reclaimed and acknowledged")
        await settled(harness, body)
    assert [m.payload.text for m in await messages_of(harness)] == ["committed"]
    assert await dlq(harness) == []


# ---------------------------------------------------------------------------------------------
# One bad part must not sink the good parts of its body (invariant 8)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(
            {"messages": [text_message("wamid." + "A" * 300, "id too long for seen_messages")]},
            id="message-id-over-256-chars",
        ),
        pytest.param(
            {
                "statuses": [
                    {
                        "id": "wamid.OUTLONG",
                        "status": "s" * 80,
                        "timestamp": "1767262201",
                        "recipient_id": CUSTOMER,
                    }
                ]
            },
            id="unknown-status-over-64-chars",
        ),
    ],
)
async def test_an_oversized_id_in_one_part_does_not_sink_the_rest_of_its_body(
    harness: Any, bad: dict[str, Any]
) -> None:
    """One part whose id is longer than the tables hold (`seen_messages.message_id` is
    varchar(256), `seen_statuses.status` varchar(64)) is refused alone. It used to fail the
    whole batch's insert: the body was retried, then dead-lettered whole, and the good message
    beside it was never emitted nor the body archived."""
    good = f"wamid.{harness.tag}-good"
    body = body_of([change(messages=[text_message(good, "keep me")])], [change(**bad)])
    settings = harness.settings(RECLAIM_IDLE_MS=100, MAX_DELIVERIES=2)
    async with harness.client(settings) as client:
        assert (await harness.post(client, body)).status_code == 200
        await wait_until(lambda: dlq(harness), timeout=20, what="something dead-lettered")

        async def acked() -> bool:
            return await pending_webhooks(harness) == 0

        await wait_until(acked, timeout=20, what="entry acknowledged")
        # The events leave through the outbox, after the commit the acknowledgement follows.
        await wait_until(lambda: _zero(outbox_rows(harness)), what="outbox published")
        [dead] = await dlq(harness)
        assert [m.payload.message_id for m in await messages_of(harness)] == [good], dead[
            "dlq_error"
        ]
        assert "entry[1].changes[0]" in dead["dlq_error"]
        assert await harness.archived(body) == 1


async def test_a_deep_unknown_field_with_a_lone_surrogate_does_not_sink_the_body(
    harness: Any,
) -> None:
    """An unknown field nested 700 deep with a lone surrogate in it is ignored. Cleaning the
    decoded document used to recurse, two Python frames per level: the RecursionError failed
    the batch at every try, and the body, good message included, was dead-lettered whole."""
    good = f"wamid.{harness.tag}-deep"
    document = json.loads(body_of([change(messages=[text_message(good, "still here")])]))
    deep: Any = "\ud83d"  # half an emoji: a lone surrogate escape
    for _ in range(700):
        deep = [deep]
    document["future_debug_info"] = deep
    body = json.dumps(document).encode()
    assert b"\\ud83d" in body
    settings = harness.settings(RECLAIM_IDLE_MS=100, MAX_DELIVERIES=2)
    async with harness.client(settings) as client:
        assert (await harness.post(client, body)).status_code == 200

        async def done() -> bool:
            return await pending_webhooks(harness) == 0 and (
                bool(await messages_of(harness)) or bool(await dlq(harness))
            )

        await wait_until(done, timeout=20, what="the body handled or dead-lettered")
        await wait_until(lambda: _zero(outbox_rows(harness)), what="outbox published")
        errors = [d["dlq_error"] for d in await dlq(harness)]
        assert [m.payload.text for m in await messages_of(harness)] == ["still here"], errors
        assert await harness.archived(body) == 1


async def _zero(value: Any) -> bool:
    return await value == 0


async def test_a_messages_object_instead_of_an_array_is_reported_not_silently_dropped(
    harness: Any,
) -> None:
    """A `messages` (or `statuses`, `changes`) that is not an array is a rejection naming
    the part. It used to be skipped without a trace: no event, no dead letter, no log line."""
    lost = text_message(f"wamid.{harness.tag}-obj", "wrapped wrongly")
    body = body_of([change(messages=lost)])
    async with harness.client() as client:
        assert (await harness.post(client, body)).status_code == 200
        await settled(harness, body)
    assert await messages_of(harness) == []
    dead = await dlq(harness)
    assert len(dead) == 1, "the malformed `messages` part vanished without a trace"
    assert "entry[0].changes[0]" in dead[0]["dlq_error"]


# ---------------------------------------------------------------------------------------------
# Dead letters of ingress: re-driving once the cause is fixed


async def test_redriving_an_allow_list_rejection_after_the_fix_emits_the_message(
    harness: Any,
) -> None:
    """Re-driving an ingress dead letter once its cause is fixed emits the refused part
    (README, Operations: "only the one that failed acts on it"). The dead letter used to carry
    the webhook's own event id, which the worker's inbox had claimed in the same commit, so
    the re-driven entry was skipped as handled, and the redrive had deleted the dead letter."""
    wamid = f"wamid.{harness.tag}-allow"
    body = body_of([change(OTHER_NUMBER, messages=[text_message(wamid, "let me in")])])
    strict = harness.settings(WA_ALLOWED_PHONE_NUMBER_IDS=NUMBER)
    async with harness.client(strict) as client:
        assert (await harness.post(client, body)).status_code == 200
        await settled(harness, body)
        [dead] = await DeadLetters(harness.bus).read(names.WA_WEBHOOKS)
    assert "WA_ALLOWED_PHONE_NUMBER_IDS" in dead.error
    assert await messages_of(harness) == []

    fixed = harness.settings(WA_ALLOWED_PHONE_NUMBER_IDS=f"{NUMBER},{OTHER_NUMBER}")
    async with harness.client(fixed):
        assert await DeadLetters(harness.bus).redrive(names.WA_WEBHOOKS, dead.entry_id)

        async def handled() -> bool:
            key = harness.bus.key(names.WA_WEBHOOKS)
            groups = await harness.bus.redis.xinfo_groups(key)
            last = (await harness.bus.redis.xinfo_stream(key))["last-generated-id"]
            return all(g["pending"] == 0 and g["last-delivered-id"] == last for g in groups)

        await wait_until(handled, what="the re-driven entry handled")
        await wait_until(lambda: _zero(outbox_rows(harness)), what="outbox published")
        assert [m.payload.message_id for m in await messages_of(harness)] == [wamid], (
            "re-driven after the fix, still not emitted; and the dead letter is gone: "
            f"{await DeadLetters(harness.bus).counts()}"
        )


async def test_an_outbox_row_republished_after_its_marker_expired_is_absorbed_by_the_inbox(
    harness: Any,
) -> None:
    """The relay's publish-once marker only lives `PUBLISH_DEDUPE_SECONDS`; a webhook entry
    appended again after that (the request path has no marker at all) must still be a no-op
    for the worker: its inbox and the wamid keys are durable."""
    body = body_of([change(messages=[text_message(f"wamid.{harness.tag}-exp", "once")])])
    event = webhook_event(body)
    stream = harness.bus.key(names.WA_WEBHOOKS)
    async with harness.client():
        await harness.bus.publish(event)
        await settled(harness, body)
        async for marker in harness.bus.redis.scan_iter(match=f"{harness.bus.prefix}published:*"):
            await harness.bus.redis.delete(marker)  # the marker expired
        assert await harness.bus.publish(event) is not None  # appended again
        # a fresh event for the same body too (e.g. `replay`)
        await harness.bus.publish(
            WebhookReceived.create(
                WebhookBody(body=body.decode(), signature="sha256=x", received_at=utcnow()),
                producer="ingress",
            )
        )

        async def drained() -> bool:
            groups = await harness.bus.redis.xinfo_groups(stream)
            last = (await harness.bus.redis.xinfo_stream(stream))["last-generated-id"]
            return all(g["pending"] == 0 and g["last-delivered-id"] == last for g in groups)

        await wait_until(drained, what="repeats handled")
        await wait_until(lambda: _zero(outbox_rows(harness)), what="outbox published")
    assert [m.payload.text for m in await messages_of(harness)] == ["once"]
