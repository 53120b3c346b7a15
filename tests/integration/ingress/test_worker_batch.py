"""The batched webhook worker: one read batch, one transaction; poison entries and duplicates
in the batch neither block nor repeat anything."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from baton_ingress.api.routes.webhook import webhook_event_id
from baton_ingress.consumer import register_consumers
from baton_ingress.db.models import SCHEMA
from baton_shared.db import OutboxRelay
from baton_shared.events import (
    MessageReceived,
    WebhookBody,
    WebhookReceived,
    parse_event,
    utcnow,
)
from baton_shared.runtime import Runtime
from baton_shared.streams import names
from baton_shared.streams.bus import entry_fields

pytestmark = pytest.mark.integration


def webhook(body: bytes) -> WebhookReceived:
    """The event the request path appends for `body`."""
    return WebhookReceived.create(
        WebhookBody(body=body.decode(), signature="sha256=x", received_at=utcnow()),
        producer="ingress",
        event_id=webhook_event_id(body),
    )


async def test_a_batch_with_poison_and_duplicates_is_handled_in_one_go(
    harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    text = harness.body("text_reply")
    image = harness.body("image_caption")
    same_message = text.replace(b'"field"', b' "field"')  # other bytes, same wamid
    unparseable = b'{"object": "whatsapp_business_account", "entries": "' + harness.tag.encode()
    unparseable += b'"}'
    other_number = harness.body("batch_everything")  # one message from 420999999999999
    settings = harness.settings(WA_ALLOWED_PHONE_NUMBER_IDS="420123456789012")
    runtime = Runtime("ingress", settings, SCHEMA)
    consumer = register_consumers(runtime, settings)
    stream = harness.bus.key(names.WA_WEBHOOKS)
    try:
        await consumer.ensure_group()
        good = [webhook(b) for b in (text, image, same_message, unparseable, other_number)]
        for event in good:
            await harness.bus.redis.xadd(stream, entry_fields(event))
        # The same entry twice (a producer retry past the publish-once marker) ...
        await harness.bus.redis.xadd(stream, entry_fields(good[0]))
        # ... and an entry that is not an event at all.
        broken = {**entry_fields(good[1]), "body": "{not an envelope " + harness.tag}
        await harness.bus.redis.xadd(stream, broken)

        with caplog.at_level(logging.WARNING, logger="baton_shared.streams.batch"):
            assert await consumer.step() == 7  # every entry in one read
        assert "one by one" not in caplog.text  # the batch itself did not fail
        await OutboxRelay(runtime.db, harness.bus).publish_batch()
    finally:
        await runtime.close()

    inbound = await harness.events(names.WA_INBOUND)
    messages = [e for e in inbound if isinstance(e, MessageReceived)]
    by_body = {webhook_event_id(b): n for n, b in enumerate((text, image, other_number))}
    assert sorted(by_body[m.causation_id] for m in messages) == [0, 1, 2, 2, 2]
    # the first body carrying the text message emitted it; its twin and the repeat did not
    assert sum(m.causation_id == webhook_event_id(text) for m in messages) == 1

    dead = {
        fields.get("dlq_error", ""): fields
        for _, fields in await harness.bus.redis.xrange(
            harness.bus.key(names.dlq(names.WA_WEBHOOKS))
        )
    }
    assert len(dead) == 3, list(dead)
    reasons = "\n".join(dead)
    assert "body: body has no `entry` array" in reasons
    assert "420999999999999 is not in WA_ALLOWED_PHONE_NUMBER_IDS" in reasons
    assert "unparseable entry" in reasons
    for fields in dead.values():
        assert harness.tag in fields["body"]  # the raw body travels with the dead letter
        assert fields["dlq_stream"] == names.WA_WEBHOOKS
        assert fields["dlq_entry_id"]
    rejected = next(f for e, f in dead.items() if "no `entry` array" in e)
    kept = parse_event(rejected["event_type"], int(rejected["schema_version"]), rejected["body"])
    assert isinstance(kept, WebhookReceived)
    assert kept.payload.body.encode() == unparseable

    pending = await harness.bus.redis.xpending(stream, names.GROUP_INGRESS)
    assert pending["pending"] == 0  # all seven acknowledged
    assert [await harness.archived(b) for b in (text, image, same_message, unparseable)] == [
        1,
        1,
        1,
        1,
    ]


async def test_a_failed_batch_is_retried_entry_by_entry(harness: Any) -> None:
    """One body whose handling raises does not hold back the others of its batch."""
    text, image = harness.body("text_reply"), harness.body("image_caption")
    settings = harness.settings()
    runtime = Runtime("ingress", settings, SCHEMA)
    consumer = register_consumers(runtime, settings)
    handle_one = consumer.handler

    async def fail_on_image(event: Any, delivery: Any) -> None:
        if isinstance(event, WebhookReceived) and event.event_id == webhook_event_id(image):
            raise RuntimeError("parser bug")
        await handle_one(event, delivery)

    async def fail_batch(items: Any) -> None:
        raise RuntimeError("parser bug somewhere in the batch")

    consumer.handler = fail_on_image
    consumer.delivered_batch_handler = fail_batch
    stream = harness.bus.key(names.WA_WEBHOOKS)
    try:
        await consumer.ensure_group()
        for body in (text, image):
            await harness.bus.redis.xadd(stream, entry_fields(webhook(body)))
        assert await consumer.step() == 2
        await OutboxRelay(runtime.db, harness.bus).publish_batch()
    finally:
        await runtime.close()
    messages = [e for e in await harness.events(names.WA_INBOUND) if isinstance(e, MessageReceived)]
    assert [m.causation_id for m in messages] == [webhook_event_id(text)]
    pending = await harness.bus.redis.xpending(stream, names.GROUP_INGRESS)
    assert pending["pending"] == 1  # the image's entry waits for its retry
