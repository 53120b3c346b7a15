"""Streams whose entries were acknowledged to the outside world are trimmed only below what
every consumer group has acknowledged (invariant 1 when consumers are down for long)."""

from __future__ import annotations

import pytest

from baton_shared.events import WebhookBody, WebhookReceived, utcnow
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, entry_fields
from baton_shared.streams.trim import AckTrimmer

pytestmark = pytest.mark.integration

STREAM = names.WA_WEBHOOKS


def webhook(n: int) -> WebhookReceived:
    body = WebhookBody(body=f'{{"n": {n}}}', signature="sha256=00", received_at=utcnow())
    return WebhookReceived.create(body, producer="test")


async def test_appends_are_never_trimmed_by_length(bus: Bus) -> None:
    small = Bus(bus.redis, prefix=bus.prefix, maxlen=100)
    for n in range(400):
        await small.publish(webhook(n))
    assert await bus.redis.xlen(bus.key(STREAM)) == 400


async def test_plain_appends_keep_the_same_trimming_policy(bus: Bus) -> None:
    # `append_many` (the ingress's path, without the publish-once check) never trims
    # `wa.webhooks` by length either, and trims every other stream to MAXLEN as usual.
    small = Bus(bus.redis, prefix=bus.prefix, maxlen=100)
    for start in range(0, 400, 50):
        fields = [entry_fields(webhook(n)) for n in range(start, start + 50)]
        await small.append_many([(STREAM, f) for f in fields])
        await small.append_many([(names.WA_STATUSES, f) for f in fields])
    assert await bus.redis.xlen(bus.key(STREAM)) == 400
    assert await bus.redis.xlen(bus.key(names.WA_STATUSES)) < 400  # approximate MAXLEN 100


async def test_trimmer_keeps_what_any_group_still_needs(bus: Bus) -> None:
    key = bus.key(STREAM)
    ids = [await bus.publish(webhook(n)) for n in range(6)]
    trimmer = AckTrimmer(bus, [STREAM])
    assert await trimmer.trim_once() == 0  # no group yet: keep everything

    await bus.redis.xgroup_create(key, "fast", id="0")
    await bus.redis.xgroup_create(key, "slow", id="0")
    read = await bus.redis.xreadgroup("fast", "c", {key: ">"})
    await bus.redis.xack(key, "fast", *[entry_id for entry_id, _ in read[0][1]])
    slow = await bus.redis.xreadgroup("slow", "c", {key: ">"}, count=3)
    await bus.redis.xack(key, "slow", slow[0][1][0][0])  # one acked, two still pending

    assert await trimmer.trim_once() == 1
    remaining = [entry_id for entry_id, _ in await bus.redis.xrange(key)]
    assert remaining == ids[1:]  # from the slow group's oldest unacknowledged entry on

    await bus.redis.xack(key, "slow", *[entry_id for entry_id, _ in slow[0][1][1:]])
    await bus.redis.xreadgroup("slow", "c", {key: ">"})  # delivered, not acknowledged
    assert await trimmer.trim_once() == 2
    assert [e for e, _ in await bus.redis.xrange(key)] == ids[3:]


async def test_a_stream_nothing_was_appended_to_is_left_alone(bus: Bus) -> None:
    trimmer = AckTrimmer(bus, [STREAM])
    assert await trimmer.floor(STREAM) is None  # no key yet: no error, nothing to trim
    assert await trimmer.trim_once() == 0
