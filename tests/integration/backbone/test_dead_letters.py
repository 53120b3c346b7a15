"""Dead letters end to end: a poison entry lands in the DLQ, the cause is fixed, `baton-dlq`
puts it back and the consumer handles it; garbage can be dropped for good."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from baton_shared import dead_letter_cli
from baton_shared.events import (
    Event,
    PlatformError,
    PlatformErrorReceived,
    PlatformErrors,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.streams.consumer import Consumer, Delivery
from baton_shared.streams.dead_letters import DeadLetters
from baton_shared.testing import wait_until

pytestmark = pytest.mark.integration

STREAM = names.WA_STATUSES


def make_event(code: int) -> PlatformErrorReceived:
    return PlatformErrorReceived.create(
        PlatformErrors(phone_number_id="1", errors=[PlatformError(code=code)]), producer="test"
    )


@contextlib.asynccontextmanager
async def running(consumer: Consumer) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, redis_url: str, prefix: str) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REDIS_PREFIX", prefix)


async def cli(*argv: str) -> int:
    """`baton-dlq` as a user runs it (its own event loop, so in a thread here)."""
    return await asyncio.to_thread(dead_letter_cli.main, list(argv))


async def test_a_dead_letter_is_redriven_once_the_cause_is_fixed(
    bus: Bus, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = True
    handled: list[int] = []

    async def handler(event: Event, delivery: Delivery) -> None:
        assert isinstance(event, PlatformErrorReceived)
        if broken and event.payload.errors[0].code == 2:
            raise RuntimeError("downstream rejects code 2")
        handled.append(event.payload.errors[0].code)

    consumer = Consumer(
        bus, stream=STREAM, group="g", name="c", handler=handler,
        block_ms=50, reclaim_idle_ms=100, max_deliveries=2,
    )  # fmt: skip
    await consumer.ensure_group()
    poison = make_event(2)
    for event in (make_event(1), poison, make_event(3)):
        await bus.publish(event)
    dead = DeadLetters(bus)
    async with running(consumer):
        await wait_until(lambda: _counts(dead), timeout=15, what="one dead letter")
    [letter] = await dead.read(STREAM)
    assert letter.group == "g"
    assert letter.deliveries == 2
    assert letter.error == "RuntimeError: downstream rejects code 2"
    assert letter.event_id == str(poison.event_id)
    assert set(letter.fields) == {
        "event_id", "event_type", "schema_version", "conversation_id", "body",
    }  # fmt: skip

    assert await cli("counts") == 0
    assert await cli("list", STREAM) == 0
    assert await cli("show", STREAM, letter.entry_id) == 0
    out = capsys.readouterr().out
    assert names.dlq(STREAM) in out
    assert "downstream rejects code 2" in out
    shown = json.loads(out[out.index("{") :])
    assert json.loads(shown["fields"]["body"])["event_id"] == str(poison.event_id)

    broken = False  # the cause is fixed
    assert await cli("redrive", STREAM, letter.entry_id) == 0
    assert await cli("redrive", STREAM, letter.entry_id) == 1  # already re-driven: not twice
    async with running(consumer):
        await wait_until(lambda: _true(sorted(handled) == [1, 2, 3]), what="re-driven, handled")
    assert await dead.read(STREAM) == []
    assert handled.count(2) == 1


async def test_garbage_is_dropped_and_bad_arguments_are_refused(
    bus: Bus, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    dlq = bus.key(names.dlq(STREAM))
    first = await bus.redis.xadd(dlq, {"junk": "x", "dlq_error": "unparseable entry"})
    second = await bus.redis.xadd(dlq, {"junk": "y", "dlq_error": "unparseable entry"})
    dead = DeadLetters(bus)
    redriven = [letter.entry_id async for letter in dead.all(STREAM, page=1)]
    assert redriven == [first, second]

    assert await cli("drop", STREAM, first, "1-1") == 1  # one of two existed
    assert [letter.entry_id for letter in await dead.read(STREAM)] == [second]
    assert await cli("redrive", STREAM, "--all") == 0
    assert await dead.read(STREAM) == []
    [(_, fields)] = await bus.redis.xrange(bus.key(STREAM))
    assert fields == {"junk": "y"}  # the original fields, without the dlq_ ones

    for argv in (
        ("list", "no.such.stream"),
        ("show", STREAM, "not-an-id"),
        ("redrive", STREAM),  # neither ids nor --all
    ):
        with pytest.raises(SystemExit) as exited:
            await cli(*argv)
        assert exited.value.code == 2
    assert "not a stream entry id" in capsys.readouterr().err


async def _counts(dead: DeadLetters) -> bool:
    return (await dead.counts())[STREAM] == 1


async def _true(value: bool) -> bool:
    return value
