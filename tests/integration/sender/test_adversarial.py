"""Trying to break the sender: malformed commands, WhatsApp's error codes,
ordering and fencing under retries, duplicates and concurrent replicas, early statuses."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI

from baton_sender.context import SenderContext
from baton_sender.main import create_app
from baton_sender.settings import SenderSettings
from baton_sender.whatsapp.client import WhatsAppClient
from baton_shared.events import (
    Author,
    DeliveryStatusChanged,
    Event,
    MessageFailed,
    MessageSent,
    MessageSuppressed,
    OutboundKind,
    OutboundMedia,
    PlatformError,
    StatusReceived,
    StatusUpdate,
    conversation_id_for,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, entry_fields
from baton_shared.testing import wait_until

from .conftest import (
    PHONE_NUMBER_ID,
    TOKEN,
    Emulator,
    command,
    handled,
    message_rows,
    new_customer,
    open_window,
    results,
)

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------------------------------------
# helpers


async def bodies(emulator: Emulator, to: str) -> list[str]:
    """Texts the emulator accepted for `to`, oldest first (other kinds by type)."""
    found = []
    for message in await emulator.messages(to):
        body = message["body"]
        found.append(body["text"]["body"] if body.get("type") == "text" else body.get("type"))
    return found


async def at_least(probe: Any, n: int) -> Any:
    got = await probe
    return got if len(got) >= n else None


async def dead_letters(bus: Bus) -> list[dict[str, str]]:
    entries = await bus.redis.xrange(bus.key(names.dlq(names.WA_OUTBOUND)))
    return [fields for _id, fields in entries]


def status(
    wamid: str,
    value: str,
    *,
    callback: str | None = None,
    code: int | None = None,
) -> StatusReceived:
    raw: dict[str, Any] = {"id": wamid, "status": value}
    if callback is not None:
        raw["biz_opaque_callback_data"] = callback
    payload = StatusUpdate(
        message_id=wamid,
        phone_number_id=PHONE_NUMBER_ID,
        status=value,
        timestamp=datetime.now(UTC),
        errors=[PlatformError(code=code, title="t", message="m", details="d")] if code else [],
        raw=raw,
    )
    return StatusReceived.create(payload, producer="test")


async def take_over(bus: Bus, to: str, epoch: int, mode: str = "operator") -> None:
    key = bus.key(names.control_state(conversation_id_for(PHONE_NUMBER_ID, to)))
    await bus.redis.hset(key, mapping={"mode": mode, "epoch": str(epoch), "operator": "ana"})


async def row_status(ctx: SenderContext, command_id: str, wanted: str) -> bool:
    rows = await message_rows(ctx, command_id)
    return bool(rows) and rows[0].status == wanted


# ---------------------------------------------------------------------------------------------
# malformed and unusual commands


def unstorable(to: str, case: str) -> Any:
    """A command the sender's tables cannot hold as it is."""
    if case == "nul_in_text":  # PostgreSQL text refuses U+0000
        return command(to, text="before\x00after")
    if case == "nul_in_caption":  # ...and so does jsonb
        return command(
            to,
            kind=OutboundKind.IMAGE,
            text=None,
            media=OutboundMedia(link="https://example.com/a.png", caption="a\x00b"),
        )
    if case == "long_command_id":  # `command_id` is varchar(200); the model refuses it too
        valid = command(to, text="long id")
        payload = valid.payload.model_copy(update={"command_id": "cmd-" + "x" * 300})
        return valid.model_copy(update={"payload": payload})  # as a faulty producer writes it
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["nul_in_text", "nul_in_caption"])
async def test_a_command_with_nul_characters_goes_out_without_them(
    ctx: SenderContext, bus: Bus, emulator: Emulator, case: str
) -> None:
    # PostgreSQL's text and jsonb refuse U+0000: such a command failed its insert at every
    # delivery and went to `wa.outbound.dlq` with no result event, leaving the operator's
    # transcript at "requested" for ever. The NULs are taken out; the message goes.
    to = new_customer()
    await open_window(ctx, to)
    poison = unstorable(to, case)
    after = command(to, text="the next one")
    await bus.publish(poison)
    await bus.publish(after)

    (sent,) = await wait_until(lambda: results(bus, after.payload.command_id), timeout=30)
    assert isinstance(sent, MessageSent)
    (outcome,) = await wait_until(lambda: results(bus, poison.payload.command_id), timeout=30)
    assert isinstance(outcome, MessageSent)
    rows = await message_rows(ctx, poison.payload.command_id)
    assert all("\x00" not in (row.text or "") for row in rows)
    assert await dead_letters(bus) == []


async def test_a_command_id_longer_than_the_tables_hold_is_dead_lettered_at_once(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    # An id past the sender's column (varchar(200)) is a producer's fault: refused where the
    # command is read, dead-lettered at its first delivery with the reason, nothing sent, and
    # the commands behind it go on.
    to = new_customer()
    await open_window(ctx, to)
    poison = unstorable(to, "long_command_id")
    after = command(to, text="the next one")
    await bus.publish(poison)
    await bus.publish(after)

    (sent,) = await wait_until(lambda: results(bus, after.payload.command_id), timeout=30)
    assert isinstance(sent, MessageSent)
    (dead,) = await wait_until(lambda: dead_letters(bus), timeout=30)
    assert "command_id" in dead["dlq_error"]
    assert dead["dlq_deliveries"] == "1"
    assert await message_rows(ctx, poison.payload.command_id) == []


async def test_a_long_text_opening_with_a_block_of_blanks_is_not_lost(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    # 3,000 blank lines (a paste, a model that padded its answer), then a 3,000-character
    # link: 6,000 characters, so it is split. The only break before the limit is in the
    # blanks, so `split_text` makes a first part of nothing but whitespace, stripped to "":
    # that part fails as invalid and takes the real text with it (earlier_part_failed).
    to = new_customer()
    await open_window(ctx, to)
    words = "https://example.com/?q=" + "x" * 2977
    event = command(to, text="\n" * 3000 + words)
    await bus.publish(event)

    async def settled() -> list[Event] | None:
        rows = await message_rows(ctx, event.payload.command_id)
        found = await results(bus, event.payload.command_id)
        return found if rows and len(found) >= len(rows) else None

    found = await wait_until(settled, timeout=15)
    assert [type(e) for e in found if isinstance(e, MessageFailed)] == [], [
        (e.payload.reason, e.payload.details) for e in found
    ]
    assert " ".join(await bodies(emulator, to)).split() == words.split()


async def test_an_unknown_kind_and_an_unknown_author_fail_as_invalid_without_a_call(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    event = command(to, text="carousel", kind=OutboundKind.TEXT)
    fields = entry_fields(event)
    fields["body"] = (
        fields["body"]
        .replace('"kind":"text"', '"kind":"carousel"')
        .replace('"author":"operator"', '"author":"robot"')
    )
    await bus.redis.xadd(bus.key(names.WA_OUTBOUND), fields)
    nxt = command(to, text="after the unknown kind")
    await bus.publish(nxt)
    await wait_until(lambda: results(bus, nxt.payload.command_id))
    (failed,) = await results(bus, event.payload.command_id)
    assert isinstance(failed, MessageFailed)
    assert failed.payload.reason == "invalid"
    assert "unknown" in failed.payload.details["problem"]
    assert await bodies(emulator, to) == ["after the unknown kind"]


@pytest.mark.parametrize(
    ("kind", "fields", "problem"),
    [
        (OutboundKind.TEXT, {"text": "   \n\t "}, "non-empty"),
        (OutboundKind.TEXT, {"text": None}, "non-empty"),
        (OutboundKind.IMAGE, {"text": None}, "media"),
        (
            OutboundKind.IMAGE,
            {"text": None, "media": OutboundMedia(link="https://x.test/a.png", id="123")},
            "exactly one",
        ),
        (
            OutboundKind.STICKER,
            {"text": None, "media": OutboundMedia(id="123", caption="no")},
            "caption",
        ),
        (OutboundKind.REACTION, {"text": None, "emoji": "x"}, "reply_to"),
        (OutboundKind.TEMPLATE, {"text": None, "template": {"name": "t"}}, "language"),
        (OutboundKind.INTERACTIVE, {"text": None}, "interactive"),
        (OutboundKind.MARK_READ, {"text": None}, "reply_to"),
    ],
)
async def test_malformed_commands_of_every_kind_fail_clearly_and_hold_nothing_back(
    ctx: SenderContext,
    bus: Bus,
    emulator: Emulator,
    kind: OutboundKind,
    fields: dict[str, Any],
    problem: str,
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    bad = command(to, kind=kind, **fields)
    good = command(to, text="still here")
    await bus.publish(bad)
    await bus.publish(good)
    (sent,) = await wait_until(lambda: results(bus, good.payload.command_id))
    assert isinstance(sent, MessageSent)
    (failed,) = await results(bus, bad.payload.command_id)
    assert isinstance(failed, MessageFailed)
    assert failed.payload.reason == "invalid"
    assert problem in failed.payload.details["problem"]
    assert await bodies(emulator, to) == ["still here"]
    assert await dead_letters(bus) == []


async def test_astral_unicode_at_the_limit_is_one_message_and_beyond_it_two(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    # 4,096 emoji (each two UTF-16 units, four UTF-8 bytes) are 4,096 characters: one
    # message; one more makes two parts, none cut inside a character.
    to = new_customer()
    await open_window(ctx, to)
    at_limit = command(to, text="\U0001f600" * 4096)
    beyond = command(to, text="\U0001f44d\U0001f3fd" * 2049)  # skin tone modifiers: 4,098
    await bus.publish(at_limit)
    await bus.publish(beyond)
    await wait_until(lambda: at_least(results(bus, beyond.payload.command_id), 2))
    assert [type(e) for e in await results(bus, at_limit.payload.command_id)] == [MessageSent]
    sent = await bodies(emulator, to)
    assert sent[0] == "\U0001f600" * 4096
    assert len(sent) == 3
    assert "".join(sent[1:]) == "\U0001f44d\U0001f3fd" * 2049


# ---------------------------------------------------------------------------------------------
# WhatsApp's error codes and network failures


@pytest.mark.parametrize(
    ("code", "http_status"),
    [(2, None), (131056, None), (1, 502), (131000, 500)],
)
async def test_more_transient_answers_are_retried_and_sent_once(
    ctx: SenderContext, bus: Bus, emulator: Emulator, code: int, http_status: int | None
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    rule: dict[str, Any] = {"to": to, "code": code, "count": 2}
    if http_status is not None:
        rule["http_status"] = http_status
    await emulator.fault(**rule)
    event = command(to, text="eventually")
    await bus.publish(event)
    (done,) = await wait_until(lambda: results(bus, event.payload.command_id), timeout=20)
    assert isinstance(done, MessageSent)
    assert done.payload.details["attempts"] == 3
    assert await bodies(emulator, to) == ["eventually"]


@pytest.mark.parametrize("code", [3, 10, 100, 131048, 131049, 131050, 131053, 132015, 368])
async def test_permanent_answers_fail_at_once_with_their_code(
    ctx: SenderContext, bus: Bus, emulator: Emulator, code: int
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, code=code)
    event = command(to)
    nxt = command(to, text="next")
    await bus.publish(event)
    await bus.publish(nxt)
    await wait_until(lambda: results(bus, nxt.payload.command_id))
    (done,) = await results(bus, event.payload.command_id)
    assert isinstance(done, MessageFailed)
    assert done.payload.reason == "rejected"
    assert done.payload.error is not None
    assert done.payload.error.code == code
    assert done.payload.details["attempts"] == 1
    assert await bodies(emulator, to) == ["next"]


async def test_a_zero_auth_error_pauses_like_an_expired_token(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    from baton_sender import keys

    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, code=0, count=1)
    event = command(to, text="kept")
    await bus.publish(event)

    async def paused() -> bool:
        return bool(await bus.redis.exists(bus.key(keys.auth_pause())))

    await wait_until(paused, what="sending paused")
    await wait_until(lambda: row_status(ctx, event.payload.command_id, "queued"))
    assert await results(bus, event.payload.command_id) == []
    (row,) = await message_rows(ctx, event.payload.command_id)
    assert row.attempts == 0


async def test_a_graph_that_cannot_be_reached_is_retried_then_fails_visibly(
    ctx: SenderContext, bus: Bus, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    nowhere = WhatsAppClient(f"http://127.0.0.1:{port}", "v23.0", TOKEN, timeout=1)
    monkeypatch.setattr(ctx, "client", nowhere)
    to = new_customer()
    await open_window(ctx, to)
    event = command(to, text="unreachable")
    await bus.publish(event)
    (done,) = await wait_until(lambda: results(bus, event.payload.command_id), timeout=20)
    assert isinstance(done, MessageFailed)
    assert done.payload.reason == "retries_exhausted"
    assert "network_error" in done.payload.details
    assert done.payload.details["attempts"] == ctx.settings.max_attempts
    await nowhere.aclose()


async def test_a_typing_indicator_without_an_answer_is_tried_again(
    ctx: SenderContext, bus: Bus, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read receipt / typing call is harmless to repeat: a timeout is retried, not failed
    # as outcome_unknown, and the answer behind it still goes out.
    await emulator.fault(type="read", delay_ms=1500, count=1)
    impatient = WhatsAppClient(emulator.url, ctx.settings.wa_api_version, TOKEN, timeout=0.5)
    monkeypatch.setattr(ctx, "client", impatient)
    to = new_customer()
    await open_window(ctx, to)
    wamid = f"wamid.in.{uuid.uuid4().hex}"
    typing = command(to, kind=OutboundKind.TYPING, author=Author.AI, text=None, reply_to=wamid)
    answer = command(to, author=Author.AI, text="the answer")
    await bus.publish(typing)
    await bus.publish(answer)
    (sent,) = await wait_until(lambda: results(bus, answer.payload.command_id), timeout=15)
    assert isinstance(sent, MessageSent)
    (typed,) = await results(bus, typing.payload.command_id)
    assert isinstance(typed, MessageSent)
    assert typed.payload.details["attempts"] == 2
    await impatient.aclose()


async def test_whatsapps_own_failure_overrules_an_unknown_outcome(
    ctx: SenderContext, bus: Bus, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The answer timed out: the message ended as `outcome_unknown` ("may or may not have been
    # delivered"). WhatsApp then says what happened: a failed status with 131026 (the customer
    # cannot receive it). That definite failure and its code must reach the operator, as a
    # sent/delivered/read status would (status.advances lets those overrule the unknown).
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, delay_ms=1500, count=1)
    impatient = WhatsAppClient(emulator.url, ctx.settings.wa_api_version, TOKEN, timeout=0.3)
    monkeypatch.setattr(ctx, "client", impatient)
    event = command(to, text="did it go?")
    await bus.publish(event)
    (unknown,) = await wait_until(lambda: results(bus, event.payload.command_id), timeout=15)
    assert isinstance(unknown, MessageFailed)
    assert unknown.payload.reason == "outcome_unknown"
    (late,) = await wait_until(lambda: emulator.messages(to), what="the late call recorded")

    verdict = status(
        late["id"], "failed", callback=late["body"]["biz_opaque_callback_data"], code=131026
    )
    await bus.publish(verdict)
    await wait_until(lambda: handled(ctx, verdict), what="the failed status handled")
    (row,) = await message_rows(ctx, event.payload.command_id)
    changes = [
        e
        for e in await results(bus, event.payload.command_id)
        if isinstance(e, DeliveryStatusChanged)
    ]
    assert row.error is not None, (row.status, row.reason)
    assert row.error.get("code") == 131026
    assert [str(e.payload.status) for e in changes] == ["failed"]
    await impatient.aclose()


# ---------------------------------------------------------------------------------------------
# statuses racing the send


async def test_a_status_that_overtakes_the_answer_lands_and_the_answer_is_still_reported(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, delay_ms=1500, count=1)  # the answer is slow to come back
    event = command(to, text="racing")
    await bus.publish(event)
    cid = event.payload.command_id
    await wait_until(lambda: row_status(ctx, cid, "calling"), what="the call started")
    # WhatsApp's webhooks for it arrive before the answer, found by the callback data.
    early = [
        status(f"wamid.{uuid.uuid4().hex}", value, callback=f"{cid}#0")
        for value in ("delivered", "sent")
    ]
    for item in early:
        await bus.publish(item)
    await wait_until(lambda: handled(ctx, early[-1]), what="early statuses handled")

    found = await wait_until(lambda: at_least(results(bus, cid), 2), timeout=15)
    kinds = [type(e) for e in found]
    assert kinds.count(MessageSent) == 1
    assert [str(e.payload.status) for e in found if isinstance(e, DeliveryStatusChanged)] == [
        "delivered"
    ]
    (row,) = await message_rows(ctx, cid)
    assert row.status == "delivered"
    assert len(await emulator.messages(to)) == 1


async def test_a_failed_webhook_during_the_call_is_final_and_the_queue_moves_on(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    # WhatsApp answers 131047 by webhook (200 + wamid, then `failed`): here the webhook
    # overtakes the answer. The message stays failed (window_closed), no MessageSent follows.
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, delay_ms=1500, count=1)
    event = command(to, text="too late")
    nxt = command(to, author=Author.OPERATOR, text="next")
    await bus.publish(event)
    await bus.publish(nxt)
    cid = event.payload.command_id
    await wait_until(lambda: row_status(ctx, cid, "calling"), what="the call started")
    failed = status(f"wamid.{uuid.uuid4().hex}", "failed", callback=f"{cid}#0", code=131047)
    await bus.publish(failed)
    await wait_until(lambda: results(bus, nxt.payload.command_id), timeout=15)
    found = await results(bus, cid)
    assert [type(e) for e in found] == [DeliveryStatusChanged]
    assert found[0].payload.reason == "window_closed"
    (row,) = await message_rows(ctx, cid)
    assert (row.status, row.reason) == ("failed", "window_closed")
    assert row.wa_message_id  # the answer's wamid is still stored


async def test_the_same_status_entry_twice_changes_the_message_once(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    event = command(to)
    await bus.publish(event)
    (sent,) = await wait_until(lambda: results(bus, event.payload.command_id))
    wamid = sent.payload.wa_message_id
    assert wamid
    read = status(wamid, "read")
    for _ in range(2):  # the same entry appended twice (a producer that retried)
        await bus.redis.xadd(bus.key(names.WA_STATUSES), entry_fields(read))
    again = status(wamid, "read")  # and the same fact under a new event id
    await bus.publish(again)
    await wait_until(lambda: handled(ctx, again))
    changes = [
        e
        for e in await results(bus, event.payload.command_id)
        if isinstance(e, DeliveryStatusChanged)
    ]
    assert [str(e.payload.status) for e in changes] == ["read"]


# ---------------------------------------------------------------------------------------------
# fencing under retries


async def test_a_takeover_between_two_attempts_fences_the_retry(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    # The AI's answer met a transient error; the operator took over before the retry. The
    # retry must be checked against the fence again, not sent on the first check's word.
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, code=131000, delay_ms=800, count=1)
    ai = command(to, author=Author.AI, control_epoch=0, text="AI answer")
    await bus.publish(ai)
    cid = ai.payload.command_id
    await wait_until(lambda: row_status(ctx, cid, "calling"), what="first attempt in flight")
    await take_over(bus, to, epoch=1)
    (done,) = await wait_until(lambda: results(bus, cid), timeout=15)
    assert isinstance(done, MessageSuppressed)
    assert await emulator.messages(to) == []


async def test_a_takeover_in_the_middle_of_a_long_ai_text_stops_its_later_parts(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, delay_ms=800, count=1)  # the first part's call is slow
    ai = command(to, author=Author.AI, control_epoch=3, text="Sentence number one. " * 500)
    await take_over(bus, to, epoch=3, mode="ai")
    await bus.publish(ai)
    cid = ai.payload.command_id
    await wait_until(lambda: row_status(ctx, cid, "calling"), what="first part in flight")
    await take_over(bus, to, epoch=4)
    found = await wait_until(lambda: at_least(results(bus, cid), 3), timeout=15)
    sent = [e for e in found if isinstance(e, MessageSent)]
    assert len(sent) <= 1  # at most the part already past its fence
    assert all(isinstance(e, (MessageSent, MessageSuppressed)) for e in found)
    assert len(await emulator.messages(to)) == len(sent)


# ---------------------------------------------------------------------------------------------
# ordering under retries and failures


async def test_order_holds_through_retries_then_a_permanent_failure(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, code=131000, count=2)  # m0: two transient errors...
    await emulator.fault(to=to, code=131026, count=1)  # ...then a permanent one
    events = [command(to, text=f"m{n}") for n in range(4)]
    for event in events:
        await bus.publish(event)
    await wait_until(lambda: results(bus, events[-1].payload.command_id), timeout=20)
    everything = [e for e in await results(bus) if e.payload.to == to]
    assert [(type(e).__name__, e.payload.text) for e in everything] == [
        ("MessageFailed", "m0"),
        ("MessageSent", "m1"),
        ("MessageSent", "m2"),
        ("MessageSent", "m3"),
    ]
    assert everything[0].payload.details["attempts"] == 3
    assert await bodies(emulator, to) == ["m1", "m2", "m3"]


# ---------------------------------------------------------------------------------------------
# the same command twice, and two replicas


@pytest.fixture
async def second_replica(
    app: FastAPI, settings: SenderSettings, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """Another sender process on the same database, Redis prefix and emulator, with a consumer
    name of its own in the group (the name is made from the process id)."""
    import baton_shared.runtime as runtime

    with monkeypatch.context() as patch:
        patch.setattr(runtime.os, "getpid", lambda: 999_999_001)
        other = create_app(settings)
    async with other.router.lifespan_context(other):
        yield other.state.sender


async def test_the_same_command_delivered_twice_to_two_replicas_is_sent_once(
    ctx: SenderContext, second_replica: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, delay_ms=300, count=1)
    first = command(to, text="only once", command_id=str(uuid.uuid4()))
    # The same event appended twice (the producer's retry after a lost reply), and the same
    # command under a new event id (a producer that rebuilt the event): three entries.
    retry = first.model_copy(update={"event_id": uuid.uuid4()})
    stream = bus.key(names.WA_OUTBOUND)
    async with bus.redis.pipeline(transaction=False) as pipe:
        pipe.xadd(stream, entry_fields(first))
        pipe.xadd(stream, entry_fields(first))
        pipe.xadd(stream, entry_fields(retry))
        await pipe.execute()
    # ...and two replicas handle them at the same time, by hand as well as by their consumers.
    from baton_sender.handlers import message_requested
    from baton_shared.streams.consumer import Delivery

    await asyncio.gather(
        *(
            message_requested.handle(c, e, Delivery(names.WA_OUTBOUND, "0-1", 2))
            for c in (ctx, second_replica)
            for e in (first, retry)
        ),
        return_exceptions=True,
    )
    (done,) = await wait_until(lambda: results(bus, first.payload.command_id))
    assert isinstance(done, MessageSent)
    nxt = command(to, text="after")
    await bus.publish(nxt)
    await wait_until(lambda: results(bus, nxt.payload.command_id))
    assert await bodies(emulator, to) == ["only once", "after"]
    assert len(await results(bus, first.payload.command_id)) == 1


async def test_two_replicas_keep_each_customers_order_through_errors(
    ctx: SenderContext, second_replica: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    customers = [new_customer() for _ in range(3)]
    for to in customers:
        await open_window(ctx, to)
    await emulator.fault(to=customers[0], code=131016, count=2)
    await emulator.fault(to=customers[1], delay_ms=400, count=2)
    await emulator.fault(to=customers[2], code=131056, count=1)
    events = [command(to, text=f"{to}-{n}") for n in range(6) for to in customers]
    for event in events:
        await bus.publish(event)
    await wait_until(
        lambda: at_least(results(bus), len(events)), timeout=40, what="every command settled"
    )
    for to in customers:
        assert await bodies(emulator, to) == [f"{to}-{n}" for n in range(6)]
    assert all(isinstance(e, MessageSent) for e in await results(bus))
    consumers = await bus.redis.xinfo_consumers(bus.key(names.WA_OUTBOUND), names.GROUP_SENDER)
    assert len(consumers) == 2


async def test_statuses_handled_at_once_by_two_replicas_only_move_forward(
    ctx: SenderContext, second_replica: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    from baton_sender.handlers import status_received
    from baton_shared.streams.consumer import Delivery

    to = new_customer()
    await open_window(ctx, to)
    event = command(to)
    await bus.publish(event)
    (sent,) = await wait_until(lambda: results(bus, event.payload.command_id))
    wamid = sent.payload.wa_message_id
    assert wamid
    statuses = [status(wamid, value) for value in ("read", "delivered", "sent", "delivered")]
    await asyncio.gather(
        *(
            status_received.handle(replica, item, Delivery(names.WA_STATUSES, "0-1", 1))
            for item in statuses
            for replica in (ctx, second_replica)
        )
    )
    (row,) = await message_rows(ctx, event.payload.command_id)
    assert row.status == "read"
    changes = [
        str(e.payload.status)
        for e in await wait_until(lambda: results(bus, event.payload.command_id))
        if isinstance(e, DeliveryStatusChanged)
    ]
    assert changes in (["read"], ["delivered", "read"])
