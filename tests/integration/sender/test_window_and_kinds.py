"""The 24-hour window, limits checked before the call, every outbound kind, long texts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from baton_sender.context import SenderContext
from baton_shared.events import MessageFailed, MessageSent, OutboundKind, OutboundMedia
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import Emulator, command, message_rows, new_customer, open_window, results

pytestmark = pytest.mark.integration

# An approved template as WhatsApp (the emulator) knows it: order number and status.
TEMPLATE = {
    "name": "order_update",
    "language": {"code": "en_US"},
    "components": [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "A-1042"}, {"type": "text", "text": "shipped"}],
        }
    ],
}


async def test_outside_window_free_form_fails_and_template_goes_out(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to, at=datetime.now(UTC) - timedelta(hours=25))
    free = command(to, text="Still there?")
    template = command(to, kind=OutboundKind.TEMPLATE, text=None, template=TEMPLATE)
    await bus.publish(free)
    await bus.publish(template)

    (failed,) = await wait_until(lambda: results(bus, free.payload.command_id))
    assert isinstance(failed, MessageFailed)
    assert failed.payload.reason == "window_closed"
    (sent,) = await wait_until(lambda: results(bus, template.payload.command_id))
    assert isinstance(sent, MessageSent)
    assert [m["type"] for m in await emulator.messages(to)] == ["template"]


async def test_customer_who_never_wrote_gets_templates_only(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    free = command(to, text="Hi!")
    await bus.publish(free)
    (failed,) = await wait_until(lambda: results(bus, free.payload.command_id))
    assert isinstance(failed, MessageFailed)
    assert failed.payload.reason == "window_closed"
    assert failed.payload.details["last_inbound_at"] is None


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"kind": OutboundKind.INTERACTIVE}, "interactive"),
        (
            {
                "kind": OutboundKind.IMAGE,
                "media": OutboundMedia(link="https://example.com/a.jpg", caption="c" * 1025),
            },
            "limit is 1024",
        ),
        (
            {
                "kind": OutboundKind.INTERACTIVE,
                "interactive": {
                    "type": "button",
                    "body": {"text": "Pick one"},
                    "action": {
                        "buttons": [
                            {"type": "reply", "reply": {"id": f"b{n}", "title": f"B{n}"}}
                            for n in range(4)
                        ]
                    },
                },
            },
            "4 buttons",
        ),
        ({"kind": OutboundKind.REACTION, "text": None}, "reply_to"),
    ],
)
async def test_limits_are_checked_before_any_call(
    ctx: SenderContext, bus: Bus, emulator: Emulator, fields: dict[str, object], problem: str
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    event = command(to, **fields)  # type: ignore[arg-type]
    await bus.publish(event)
    (failed,) = await wait_until(lambda: results(bus, event.payload.command_id))
    assert isinstance(failed, MessageFailed)
    assert failed.payload.reason == "invalid"
    assert problem in failed.payload.details["problem"]
    assert await emulator.messages(to) == []


async def test_every_kind_is_accepted_by_the_emulator(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    link = "https://example.com/files/"  # a host the emulator counts as reachable
    audio_id = await emulator.upload(b"ID3 not really an mp3", "audio/mpeg")  # sent by id
    events = [
        command(to, text="see https://example.com", preview_url=True, reply_to="wamid.in.1"),
        command(to, kind=OutboundKind.IMAGE, media=OutboundMedia(link=link + "a.jpg", caption="A")),
        command(to, kind=OutboundKind.AUDIO, media=OutboundMedia(id=audio_id)),
        command(to, kind=OutboundKind.AUDIO, media=OutboundMedia(link=link + "n.ogg", voice=True)),
        command(to, kind=OutboundKind.VIDEO, media=OutboundMedia(link=link + "v.mp4")),
        command(
            to,
            kind=OutboundKind.DOCUMENT,
            media=OutboundMedia(link=link + "d.pdf", filename="invoice.pdf", caption="Invoice"),
        ),
        command(to, kind=OutboundKind.STICKER, media=OutboundMedia(link=link + "s.webp")),
        command(to, kind=OutboundKind.TEMPLATE, template=TEMPLATE),
        command(
            to,
            kind=OutboundKind.INTERACTIVE,
            interactive={
                "type": "list",
                "body": {"text": "Choose"},
                "action": {
                    "button": "Options",
                    "sections": [{"title": "S", "rows": [{"id": "r1", "title": "Row"}]}],
                },
            },
        ),
        command(to, kind=OutboundKind.REACTION, reply_to="wamid.in.2", emoji="\U0001f44d"),
        command(to, kind=OutboundKind.REACTION, reply_to="wamid.in.2", emoji=""),
    ]
    for event in events:
        await bus.publish(event)
    last = events[-1].payload.command_id
    await wait_until(lambda: results(bus, last), timeout=20)
    outcomes = [(await results(bus, e.payload.command_id))[0] for e in events]
    problems = [o.payload for o in outcomes if not isinstance(o, MessageSent)]
    assert problems == []
    received = await emulator.messages(to)
    assert [m["type"] for m in received] == [e.payload.kind.value for e in events]
    assert [m["body"]["audio"] for m in received if m["type"] == "audio"] == [
        {"id": audio_id},
        {"link": link + "n.ogg", "voice": True},  # a voice note
    ]


async def test_mark_read_and_typing_indicator(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    typing = command(to, kind=OutboundKind.TYPING, text=None, reply_to="wamid.in.typing")
    read = command(to, kind=OutboundKind.MARK_READ, text=None, reply_to="wamid.in.read")
    await bus.publish(typing)
    await bus.publish(read)
    await wait_until(lambda: results(bus, read.payload.command_id))
    assert isinstance((await results(bus, typing.payload.command_id))[0], MessageSent)
    reads = (await emulator.http.get("/_emulator/reads")).json()
    mine = [r for r in reads if r["id"] in ("wamid.in.typing", "wamid.in.read")]
    assert [r["type"] for r in mine] == ["typing_indicator", "read"]


async def test_long_text_is_split_and_sent_in_order(
    ctx: SenderContext, bus: Bus, emulator: Emulator
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    text = ("word " * 1000) + ("tail " * 200)  # 6,000 characters
    event = command(to, text=text)
    await bus.publish(event)
    await wait_until(lambda: _count(results(bus, event.payload.command_id), 2))
    bodies = [m["body"]["text"]["body"] for m in await emulator.messages(to)]
    assert len(bodies) == 2
    assert all(len(b) <= 4096 for b in bodies)
    assert " ".join(bodies).split() == text.split()
    rows = await message_rows(ctx, event.payload.command_id)
    assert [(r.part, r.parts, r.status) for r in rows] == [(0, 2, "sent"), (1, 2, "sent")]


async def _count(values: object, n: int) -> bool:
    return len(await values) >= n  # type: ignore[misc, arg-type]
