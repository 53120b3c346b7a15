"""The webhook worker: every fixture becomes the right events, once, with causality kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from baton_ingress.api.routes.webhook import webhook_event_id
from baton_ingress.dead_letter import rejected_parts_id
from baton_ingress.handlers.webhook_received import WebhookReceivedHandler
from baton_shared.db import Database, OutboxRelay
from baton_shared.db.tables import outbox
from baton_shared.events import (
    MessageReceived,
    PlatformErrorReceived,
    StatusReceived,
    WebhookBody,
    WebhookReceived,
    conversation_id_for,
    parse_event,
    utcnow,
)
from baton_shared.streams import names
from baton_shared.streams.consumer import Delivery
from baton_shared.testing import wait_until
from baton_shared.testing.gate import Gate

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks"

# fixture -> events emitted as (messages, statuses, platform errors); default (1, 0, 0)
EMITTED = {
    "batch_everything": (4, 2, 1),
    "duplicate_in_batch": (1, 0, 0),  # the same wamid twice in one body
    "malformed_items": (1, 0, 0),  # two parts go to the DLQ
    "status_delivered": (0, 1, 0),
    "status_failed": (0, 1, 0),
    "status_bsuid": (0, 1, 0),
    "statuses_out_of_order": (0, 4, 0),  # `read` twice: once
    "platform_errors": (0, 0, 1),
    "template_status_update": (0, 0, 0),  # archived only
    "unstorable_escapes": (2, 0, 0),  # a lone surrogate no longer fails the whole body
}


async def outbox_empty(harness: Any) -> bool:
    db = Database(harness.database_url, "ingress", pool_size=1)
    try:
        async with db.session() as session:
            return (await session.scalar(select(func.count()).select_from(outbox))) == 0
    finally:
        await db.dispose()


async def settle(harness: Any, body: bytes) -> None:
    """Wait until `body` is archived (the worker committed) and its events left the outbox."""
    await wait_until(lambda: harness.archived(body), what="webhook archived")
    await wait_until(lambda: outbox_empty(harness), what="outbox published")


async def emitted(harness: Any) -> tuple[list[Any], list[Any], list[Any]]:
    inbound = await harness.events(names.WA_INBOUND)
    statuses = await harness.events(names.WA_STATUSES)
    return (
        [e for e in inbound if isinstance(e, MessageReceived)],
        [e for e in statuses if isinstance(e, StatusReceived)],
        [e for e in statuses if isinstance(e, PlatformErrorReceived)],
    )


async def dlq_entries(harness: Any) -> list[dict[str, str]]:
    key = harness.bus.key(names.dlq(names.WA_WEBHOOKS))
    return [fields for _, fields in await harness.bus.redis.xrange(key)]


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
async def test_fixture_becomes_its_events(harness: Any, name: str) -> None:
    body = harness.body(name)
    async with harness.client() as client:
        assert (await harness.post(client, body)).status_code == 200
        await settle(harness, body)
    messages, statuses, errors = await emitted(harness)
    assert (len(messages), len(statuses), len(errors)) == EMITTED.get(name, (1, 0, 0))
    webhook_id = webhook_event_id(body)
    for event in [*messages, *statuses, *errors]:
        assert event.causation_id == webhook_id
        assert event.producer == "ingress"
    for message in messages:
        p = message.payload
        assert message.conversation_id == conversation_id_for(p.phone_number_id, p.customer_id)
    for status in statuses:
        customer = status.payload.recipient_id or status.payload.raw["recipient_user_id"]
        assert status.conversation_id == conversation_id_for(
            status.payload.phone_number_id, customer
        )
    assert len(await dlq_entries(harness)) == (1 if name == "malformed_items" else 0)


async def test_duplicate_posts_give_one_event(harness: Any) -> None:
    body = harness.body("text_reply")
    async with harness.client() as client:
        for _ in range(3):
            assert (await harness.post(client, body)).status_code == 200
        await settle(harness, body)
    messages, _, _ = await emitted(harness)
    assert len(messages) == 1
    assert await harness.archived(body) == 1


async def test_a_message_redelivered_in_another_body_is_emitted_once(harness: Any) -> None:
    first = harness.body("text_reply")
    again = first.replace(b'"field"', b' "field"')  # other bytes, same wamid (Meta re-batching)
    async with harness.client() as client:
        for body in (first, again):
            assert (await harness.post(client, body)).status_code == 200
            await settle(harness, body)
    messages, _, _ = await emitted(harness)
    assert len(messages) == 1
    assert (await harness.archived(first), await harness.archived(again)) == (1, 1)


async def test_a_webhook_accepted_while_no_worker_runs_is_processed_later(harness: Any) -> None:
    """Invariant 1: answered 200 with every worker stopped, processed once one starts."""
    body = harness.body("text_reply")
    async with harness.client(run_worker=False) as client:
        assert (await harness.post(client, body)).status_code == 200
    assert await emitted(harness) == ([], [], [])
    assert await harness.archived(body) == 0

    async with harness.client():
        await settle(harness, body)
    messages, _, _ = await emitted(harness)
    assert [m.payload.text for m in messages] == ["My order #4471 still hasn't arrived"]


async def test_unknown_numbers_go_to_the_dlq_and_the_rest_is_emitted(harness: Any) -> None:
    settings = harness.settings(WA_ALLOWED_PHONE_NUMBER_IDS="420123456789012")
    body = harness.body("batch_everything")
    async with harness.client(settings) as client:
        assert (await harness.post(client, body)).status_code == 200
        await settle(harness, body)
    messages, statuses, errors = await emitted(harness)
    assert (len(messages), len(statuses), len(errors)) == (3, 2, 0)
    [dead] = await dlq_entries(harness)
    assert "420999999999999 is not in WA_ALLOWED_PHONE_NUMBER_IDS" in dead["dlq_error"]
    assert dead["dlq_stream"] == names.WA_WEBHOOKS
    kept = parse_event(dead["event_type"], int(dead["schema_version"]), dead["body"])
    assert isinstance(kept, WebhookReceived)
    assert kept.payload.body.encode() == body  # the raw body, byte for byte
    # Its own event id, not the webhook's: the inbox holds that one (see `rejected_parts_id`).
    assert dead["event_id"] == str(rejected_parts_id(webhook_event_id(body)))


async def test_an_unparseable_body_is_archived_and_dead_lettered_raw(harness: Any) -> None:
    body = b'{"object": "whatsapp_business_account", "entries": "' + harness.tag.encode() + b'"}'
    async with harness.client() as client:
        assert (await harness.post(client, body)).status_code == 200
        await settle(harness, body)
    [dead] = await dlq_entries(harness)
    assert dead["dlq_error"] == "body: body has no `entry` array"
    assert harness.tag in dead["body"]  # the raw body travels with the dead letter
    assert await emitted(harness) == ([], [], [])


async def test_a_redelivered_entry_is_processed_once(harness: Any) -> None:
    """A crash after commit but before the ack redelivers the entry: the inbox absorbs it."""
    body = harness.body("batch_everything").decode()
    event = WebhookReceived.create(
        WebhookBody(body=body, signature="sha256=x", received_at=utcnow()), producer="test"
    )
    db = Database(harness.database_url, "ingress", pool_size=2)
    try:
        handler = WebhookReceivedHandler(db, harness.bus, harness.settings())
        await handler(event, Delivery(names.WA_WEBHOOKS, "1-0", 1))
        await handler(event, Delivery(names.WA_WEBHOOKS, "1-0", 2))
        await OutboxRelay(db, harness.bus).publish_batch()
    finally:
        await db.dispose()
    messages, statuses, errors = await emitted(harness)
    assert (len(messages), len(statuses), len(errors)) == (4, 2, 1)
    assert {m.payload.phone_number_id for m in messages} == {"420123456789012", "420999999999999"}


async def test_a_postgresql_outage_loses_no_webhook_and_dead_letters_none(harness: Any) -> None:
    # PostgreSQL goes away (its connections cut, new ones refused) while webhooks keep
    # arriving: they are answered 200 (they are in Redis), the worker backs off and retries
    # them however many deliveries that takes, and once PostgreSQL is back every one is
    # archived and emitted; none is dead-lettered for an outage.
    url = make_url(harness.database_url)
    async with Gate(url.host or "127.0.0.1", url.port or 5432) as gate:
        gated = url.set(host="127.0.0.1", port=gate.port).render_as_string(hide_password=False)
        settings = harness.settings(DATABASE_URL=gated, RECLAIM_IDLE_MS=100, MAX_DELIVERIES=2)
        tag = f"wamid.{harness.tag}-".encode()
        bodies = [harness.body("text_reply").replace(tag, tag + b"%d-" % n) for n in range(3)]
        async with harness.client(settings) as client:
            await gate.shut()
            for body in bodies:
                assert (await harness.post(client, body)).status_code == 200

            async def retried_past_the_limit() -> bool:
                key = harness.bus.key(names.WA_WEBHOOKS)
                pending = await harness.bus.redis.xpending_range(key, "ingress", "-", "+", 10)
                # the oldest, retried first (in order), past the limit; the others wait
                return bool(pending) and pending[0]["times_delivered"] > 2

            await wait_until(retried_past_the_limit, timeout=30, what="deliveries past the limit")
            assert await dlq_entries(harness) == []
            await gate.open()
            for body in bodies:  # the worker's pause after an outage is at most 5 s
                await wait_until(lambda b=body: harness.archived(b), timeout=30, what="archived")
                await settle(harness, body)
        messages, _, _ = await emitted(harness)
    assert len(messages) == 3
    assert await dlq_entries(harness) == []
