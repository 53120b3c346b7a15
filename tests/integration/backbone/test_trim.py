"""Baton's streams are never trimmed by length: only below what Baton's consumer groups have
acknowledged (invariant 1, and nothing lost downstream, when consumers are down for long);
other groups are waited for while the stream is under `STREAM_MAXLEN`."""

from __future__ import annotations

import pytest

from baton_shared.events import Event, WebhookBody, WebhookReceived, utcnow
from baton_shared.runtime import Runtime
from baton_shared.settings import BaseServiceSettings
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, entry_fields
from baton_shared.streams.consumer import Delivery
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
    # `append_many` (the ingress's path, without the publish-once check) never trims Baton's
    # streams by length either; a stream of someone else's is trimmed to MAXLEN as usual.
    small = Bus(bus.redis, prefix=bus.prefix, maxlen=100)
    for start in range(0, 400, 50):
        fields = [entry_fields(webhook(n)) for n in range(start, start + 50)]
        await small.append_many([(STREAM, f) for f in fields])
        await small.append_many([(names.WA_STATUSES, f) for f in fields])
        await small.append_many([("crm.exports", f) for f in fields])
    assert await bus.redis.xlen(bus.key(STREAM)) == 400
    assert await bus.redis.xlen(bus.key(names.WA_STATUSES)) == 400
    assert await bus.redis.xlen(bus.key("crm.exports")) < 400  # approximate MAXLEN 100


async def test_a_consumer_down_for_long_loses_nothing(bus: Bus) -> None:
    # Far more entries than STREAM_MAXLEN while the buffer is down: all still there for it.
    small = Bus(bus.redis, prefix=bus.prefix, maxlen=100)
    key = bus.key(names.WA_INBOUND)
    await bus.redis.xgroup_create(key, names.GROUP_BUFFER, id="0", mkstream=True)
    for start in range(0, 1000, 100):
        fields = [entry_fields(webhook(n)) for n in range(start, start + 100)]
        await small.append_many([(names.WA_INBOUND, f) for f in fields])
    assert await AckTrimmer(small, [names.WA_INBOUND]).trim_once() == 0
    read = await bus.redis.xreadgroup(names.GROUP_BUFFER, "c", {key: ">"}, count=2000)
    assert len(read[0][1]) == 1000


async def test_trimmer_keeps_what_any_group_still_needs(bus: Bus) -> None:
    key = bus.key(STREAM)
    ids = [await bus.publish(webhook(n)) for n in range(6)]
    trimmer = AckTrimmer(bus, [STREAM])
    assert await trimmer.trim_once() == 0  # no group yet: keep everything
    await bus.redis.xgroup_create(key, "crm", id="0")
    assert await trimmer.trim_once() == 0  # only someone else's: keep everything for ours

    await bus.redis.xgroup_create(key, names.GROUP_INGRESS, id="0")
    read = await bus.redis.xreadgroup(names.GROUP_INGRESS, "c", {key: ">"})
    await bus.redis.xack(key, names.GROUP_INGRESS, *[entry_id for entry_id, _ in read[0][1]])
    slow = await bus.redis.xreadgroup("crm", "c", {key: ">"}, count=3)
    await bus.redis.xack(key, "crm", slow[0][1][0][0])  # one acked, two still pending

    assert await trimmer.trim_once() == 1
    remaining = [entry_id for entry_id, _ in await bus.redis.xrange(key)]
    assert remaining == ids[1:]  # from the slow group's oldest unacknowledged entry on

    await bus.redis.xack(key, "crm", *[entry_id for entry_id, _ in slow[0][1][1:]])
    await bus.redis.xreadgroup("crm", "c", {key: ">"})  # delivered, not acknowledged
    assert await trimmer.trim_once() == 2
    assert [e for e, _ in await bus.redis.xrange(key)] == ids[3:]


async def test_other_groups_are_waited_for_only_while_the_stream_is_short(bus: Bus) -> None:
    key = bus.key(names.CONV_CONTROL)
    ids = [await bus.publish(webhook(n), stream=names.CONV_CONTROL) for n in range(10)]
    for group in (names.GROUP_AGENT, "crm"):
        await bus.redis.xgroup_create(key, group, id="0")
    read = await bus.redis.xreadgroup(names.GROUP_AGENT, "c", {key: ">"}, count=8)
    await bus.redis.xack(key, names.GROUP_AGENT, *[entry_id for entry_id, _ in read[0][1]])

    assert await AckTrimmer(bus, [names.CONV_CONTROL], keep=10).trim_once() == 0
    # Longer than `keep`: what only "crm" still needs goes, what the agent needs stays.
    assert await AckTrimmer(bus, [names.CONV_CONTROL], keep=5).trim_once() == 8
    assert [e for e, _ in await bus.redis.xrange(key)] == ids[8:]


async def test_a_stream_nothing_was_appended_to_is_left_alone(bus: Bus) -> None:
    trimmer = AckTrimmer(bus, [STREAM])
    assert await trimmer.floors(STREAM) == (None, None)  # no key yet: no error, no trim
    assert await trimmer.trim_once() == 0


async def test_a_service_trims_every_stream_its_consumers_read(
    database_url: str, redis_url: str, prefix: str
) -> None:
    settings = BaseServiceSettings(
        database_url=database_url, redis_url=redis_url, redis_prefix=prefix, baton_env="test"
    )
    runtime = Runtime("x", settings, "agent")

    async def ignore(event: Event, delivery: Delivery) -> None:
        return None

    runtime.consume(names.WA_INBOUND, names.GROUP_SENDER, ignore)
    runtime.consume(names.WA_STATUSES, names.GROUP_SENDER, ignore)
    await runtime.start()
    try:
        [trimmer] = [w for w in runtime.workers if isinstance(w, AckTrimmer)]
        assert trimmer.streams == (names.WA_INBOUND, names.WA_STATUSES)
    finally:
        await runtime.close()
