"""Turns through the whole agent: the real Gemini client against the emulator, real
PostgreSQL and Redis, events in and out of the streams."""

from __future__ import annotations

import pytest

from baton_shared.events import (
    NOT_MESSAGES,
    Author,
    InterventionRequested,
    MessageRequested,
    MessageType,
    Mode,
    OutboundKind,
    TurnCompleted,
    TurnOutcome,
    TurnReady,
    command_id_for,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import Gemini, RunningAgent, events, make_turn

pytestmark = pytest.mark.integration


async def finish(bus: Bus, turn: TurnReady) -> TurnCompleted:
    """Publish the turn and wait for the agent to report it done."""
    await bus.publish(turn)

    async def done() -> list[TurnCompleted]:
        return [
            e
            for e in await events(bus, names.CONV_TURNS_DONE)
            if isinstance(e, TurnCompleted) and e.payload.turn_id == turn.payload.turn_id
        ]

    [completed] = await wait_until(done, timeout=30, what="TurnCompleted")
    return completed


async def sent(bus: Bus, turn: TurnReady) -> list[MessageRequested]:
    """The messages `turn` sent (staged before TurnCompleted in the outbox), not counting its
    typing indicator (`typing`)."""
    return [e for e in await commands(bus, turn) if e.payload.kind not in NOT_MESSAGES]


async def typing(bus: Bus, turn: TurnReady) -> list[MessageRequested]:
    """The typing indicators `turn` published."""
    return [e for e in await commands(bus, turn) if e.payload.kind is OutboundKind.TYPING]


async def commands(bus: Bus, turn: TurnReady) -> list[MessageRequested]:
    return [
        e
        for e in await events(bus, names.WA_OUTBOUND)
        if isinstance(e, MessageRequested) and e.payload.turn_id == turn.payload.turn_id
    ]


async def test_plain_text_is_answered_once(agent: RunningAgent, bus: Bus, gemini: Gemini) -> None:
    turn = make_turn("Hello, are you open on Sunday?")
    completed = await finish(bus, turn)

    [answer] = await sent(bus, turn)
    command = answer.payload
    assert command.text == "You said: Hello, are you open on Sunday?"
    assert command.author is Author.AI
    assert command.kind is OutboundKind.TEXT
    assert command.command_id == command_id_for(str(turn.payload.turn_id), 0)
    assert command.control_epoch == 0
    assert command.to == turn.payload.wa_id
    assert answer.correlation_id == turn.correlation_id
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert completed.payload.outputs == 1
    [request] = await gemini.requests()
    assert request["model"] == "gemini-2.5-flash"
    assert "Baton Coffee Roasters" in str(request["body"].get("systemInstruction"))


async def test_unreadable_messages_reach_the_model_as_descriptions(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    turn = make_turn(
        "", "👍", "hi", types=[MessageType.STICKER, MessageType.REACTION, MessageType.TEXT]
    )
    await finish(bus, turn)

    [answer] = await sent(bus, turn)
    assert answer.payload.text == (
        "You said: [The customer sent a sticker]\n"
        "[The customer reacted with 👍 to an earlier message]\nhi"
    )


async def test_sample_sends_catalogue_media(agent: RunningAgent, bus: Bus, gemini: Gemini) -> None:
    turn = make_turn("Could you send me a sample picture?")
    completed = await finish(bus, turn)

    media, text = await sent(bus, turn)
    assert media.payload.kind is OutboundKind.IMAGE
    assert media.payload.media is not None
    assert media.payload.media.link == "https://example.com/media/sample-box.jpg"
    assert media.payload.command_id == command_id_for(str(turn.payload.turn_id), 0)
    assert text.payload.text == "Done."  # the emulator's answer to a tool result
    assert text.payload.command_id == command_id_for(str(turn.payload.turn_id), 1)
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert len(await gemini.requests()) == 2


async def test_choices_are_sent_as_reply_buttons_and_are_the_whole_answer(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    turn = make_turn("What are my options for getting the beans?")
    completed = await finish(bus, turn)

    [question] = await sent(bus, turn)
    command = question.payload
    assert command.kind is OutboundKind.INTERACTIVE
    assert command.interactive == {
        "type": "button",
        "body": {"text": "How would you like to get it?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "choice-1", "title": "Pickup"}},
                {"type": "reply", "reply": {"id": "choice-2", "title": "Delivery"}},
            ]
        },
    }
    assert command.text == "How would you like to get it?\n1. Pickup\n2. Delivery"
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert len(await gemini.requests()) == 1  # no second model call after the question

    # The customer's tap is their next turn; the model sees its own question in the thread.
    tap = make_turn("Delivery", wa_id=turn.payload.wa_id, types=[MessageType.BUTTON])
    await finish(bus, tap)
    [answer] = await sent(bus, tap)
    assert answer.payload.text == "You said: Delivery"
    history = str((await gemini.requests())[-1]["body"]["contents"])
    assert "offer_choices" in history
    assert "Pickup" in history


async def test_human_request_hands_off_then_ai_stays_silent(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    turn = make_turn("I want to talk to a human")
    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.HANDED_OFF
    [notice] = await sent(bus, turn)
    assert notice.payload.text == "Done."
    [intervention] = await events(bus, names.CONV_CONTROL)
    assert isinstance(intervention, InterventionRequested)
    assert intervention.payload.mode is Mode.PENDING_HUMAN
    assert intervention.payload.epoch == 1
    assert intervention.payload.reason == "customer asked for a human"
    assert intervention.conversation_id == turn.conversation_id

    follow_up = make_turn("hello?", wa_id=turn.payload.wa_id)
    completed = await finish(bus, follow_up)
    assert completed.payload.outcome is TurnOutcome.RECORDED
    assert await sent(bus, follow_up) == []
    assert await typing(bus, follow_up) == []  # nobody is typing for the person to come
    assert len(await gemini.requests()) == 2  # the follow-up never reached the model


async def test_an_answer_is_preceded_by_typing_on_the_latest_message(
    agent: RunningAgent, bus: Bus
) -> None:
    turn = make_turn("hi", "my order", "#5521 is late")
    await finish(bus, turn)

    [shown] = await typing(bus, turn)
    command = shown.payload
    assert command.reply_to == turn.payload.messages[-1].message_id  # read up to the last
    assert (command.author, command.control_epoch, command.to) == (
        Author.AI,
        0,
        turn.payload.wa_id,
    )  # fenced like the answer: a takeover suppresses it too
    assert command.command_id == command_id_for(f"{turn.payload.turn_id}:typing", 0)
    outbound = [e.event_id for e in await commands(bus, turn)]
    [answer] = await sent(bus, turn)
    assert outbound.index(shown.event_id) < outbound.index(answer.event_id)


async def test_typing_can_be_switched_off(
    agent: RunningAgent, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = agent.ctx.settings.model_copy(update={"typing_indicator": False})
    monkeypatch.setattr(agent.ctx, "settings", off)
    turn = make_turn("hello")
    await finish(bus, turn)

    assert len(await sent(bus, turn)) == 1
    assert await typing(bus, turn) == []


async def test_long_answer_is_split_at_sentences(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    sentence = "This is a fairly long sentence about our coffee roasting schedule. "
    turn = make_turn(sentence * 70)  # ~4,700 characters, echoed back by the emulator
    await finish(bus, turn)

    parts = [m.payload.text or "" for m in await sent(bus, turn)]
    assert len(parts) == 2
    assert all(len(p) <= 4096 for p in parts)
    assert parts[0].endswith("schedule.")
    assert " ".join(parts) == f"You said: {sentence * 70}".strip()
