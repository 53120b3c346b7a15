"""Try to leave a customer unanswered, answer them twice, or answer
them while a person holds the conversation; Gemini failing in every way the emulator can;
control events twice or out of order; garbage on the agent's streams."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from baton_agent.db.models import turns
from baton_agent.handlers.control_changed import handle_control_changed
from baton_agent.handlers.turn_ready import handle_turn_ready
from baton_agent.transcript import BACK_FROM_A_PERSON
from baton_devtools.gemini.script import latest_user_text
from baton_shared.events import (
    Author,
    ControlChange,
    ConversationHandedBack,
    ConversationResolved,
    ConversationTakenOver,
    InboundMessage,
    InterventionRequested,
    MessageRequested,
    MessageType,
    Mode,
    OutboundKind,
    Turn,
    TurnCloseReason,
    TurnCompleted,
    TurnOutcome,
    TurnReady,
    conversation_id_for,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, Gemini, RunningAgent, events, make_turn
from .test_modes import stored_epoch
from .test_turns import finish, sent

pytestmark = pytest.mark.integration


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"functionCall": {"name": name, "args": args}}


def raw_turn(*raws: tuple[MessageType, str | None, dict[str, Any]], wa_id: str | None = None):
    """A TurnReady whose messages carry the given (type, text, raw WhatsApp object)."""
    customer = wa_id or f"34{uuid.uuid4().int % 10**10:010d}"
    messages = [
        InboundMessage(
            message_id=f"wamid.{uuid.uuid4().hex}",
            phone_number_id=PHONE_NUMBER_ID,
            wa_id=customer,
            timestamp=datetime.now(UTC),
            type=kind,
            text=body,
            raw=raw,
        )
        for kind, body, raw in raws
    ]
    turn = Turn(
        turn_id=uuid.uuid4(),
        phone_number_id=PHONE_NUMBER_ID,
        wa_id=customer,
        sequence=1,
        messages=messages,
        closed_by=TurnCloseReason.QUIET,
    )
    return TurnReady.create(
        turn, producer="test", conversation_id=conversation_id_for(PHONE_NUMBER_ID, customer)
    )


def control(event_type: type, wa_id: str, mode: Mode, epoch: int):
    change = ControlChange(
        phone_number_id=PHONE_NUMBER_ID,
        wa_id=wa_id,
        mode=mode,
        epoch=epoch,
        operator=None if mode is Mode.AI else "ana",
    )
    return event_type.create(
        change, producer="operator-api", conversation_id=conversation_id_for(PHONE_NUMBER_ID, wa_id)
    )


async def logged(agent: RunningAgent, turn_id: uuid.UUID) -> list[str]:
    async with agent.ctx.db.session() as session:
        rows = (await session.execute(select(turns).where(turns.c.turn_id == turn_id))).all()
    return [r.outcome for r in rows]


# --- garbage that ingress lets through (it reads every field defensively) ----------------


async def published(bus: Bus, turn: TurnReady) -> list[MessageRequested]:
    """What a turn handled in this test (not by the consumer) sent, once the outbox relay has
    published its TurnCompleted: staged after its messages in one transaction, and published
    in commit order, so every message of the turn is on the stream by then."""

    async def completed() -> bool:
        done = await events(bus, names.CONV_TURNS_DONE)
        return any(
            isinstance(e, TurnCompleted) and e.payload.turn_id == turn.payload.turn_id for e in done
        )

    await wait_until(completed, timeout=15, what="the turn's TurnCompleted published")
    return await sent(bus, turn)


@pytest.mark.parametrize(
    ("kind", "body", "raw"),
    [
        (MessageType.LOCATION, "Location: (None, None)", {"type": "location", "location": "Bonn"}),
        (MessageType.CONTACTS, None, {"type": "contacts", "contacts": ["Ana"]}),
        (MessageType.CONTACTS, None, {"type": "contacts", "contacts": [{"name": "Ana"}]}),
    ],
    ids=["location-a-string", "contact-a-string", "contact-name-a-string"],
)
async def test_a_message_ingress_accepted_with_odd_fields_is_still_answered(
    agent: RunningAgent, bus: Bus, gemini: Gemini, kind, body, raw
) -> None:
    # Ingress parses `location` and `contacts` with `obj()`/`items()` and keeps the message as
    # `raw`; the agent's transcript must read them as defensively, or the turn fails on every
    # delivery, is dead-lettered, and the customer is never answered.
    turn = raw_turn((kind, body, raw), (MessageType.TEXT, "are you open?", {}))
    await handle_turn_ready(agent.ctx, turn)
    [answer] = await published(bus, turn)
    assert "are you open?" in (answer.payload.text or "")


async def test_a_turn_without_messages_is_answered_not_crashed(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    turn = raw_turn()
    completed = await finish(bus, turn)
    assert completed.payload.outcome in (TurnOutcome.ANSWERED, TurnOutcome.FAILED)
    assert len(await sent(bus, turn)) == 1


# --- Gemini failing -------------------------------------------------------------------------


async def test_a_safety_block_on_every_try_ends_in_one_apology_and_a_person(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    await gemini.fault(finish_reason="SAFETY", count=3)
    turn = make_turn("tell me something")
    completed = await finish(bus, turn)

    [apology] = await sent(bus, turn)
    assert apology.payload.text == agent.ctx.config.profile.apology
    assert completed.payload.outcome is TurnOutcome.FAILED
    assert [e.payload.mode for e in await events(bus, names.CONV_CONTROL)] == [Mode.PENDING_HUMAN]


async def test_a_blocked_prompt_is_not_asked_again_the_customer_gets_a_person_at_once(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    # Gemini refused the prompt itself (no candidate): the same prompt gets the same verdict,
    # so no retry and its backoff, only the apology and a person.
    await gemini.fault(prompt_block_reason="SAFETY", count=3)
    turn = make_turn("tell me something")
    completed = await finish(bus, turn)

    [apology] = await sent(bus, turn)
    assert apology.payload.text == agent.ctx.config.profile.apology
    assert completed.payload.outcome is TurnOutcome.FAILED
    assert len(await gemini.requests()) == 1
    [handoff] = [
        e for e in await events(bus, names.CONV_CONTROL) if isinstance(e, InterventionRequested)
    ]
    assert "PromptBlockedError" in (handoff.payload.reason or "")


async def test_a_safety_block_once_is_retried_and_answered(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    await gemini.fault(finish_reason="SAFETY")
    turn = make_turn("hello there")
    completed = await finish(bus, turn)
    [answer] = await sent(bus, turn)
    assert answer.payload.text == "You said: hello there"
    assert completed.payload.outcome is TurnOutcome.ANSWERED


@pytest.mark.parametrize("finish_reason", ["SAFETY", "MALFORMED_FUNCTION_CALL", "RECITATION"])
async def test_a_blocked_answer_after_the_handoff_tool_still_tells_the_customer(
    agent: RunningAgent, bus: Bus, gemini: Gemini, finish_reason: str
) -> None:
    await gemini.fault(delay_ms=1, count=1)  # the scripted request_intervention
    await gemini.fault(finish_reason=finish_reason)
    turn = make_turn("I want a human")
    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.HANDED_OFF
    [notice] = await sent(bus, turn)
    assert notice.payload.text == agent.ctx.config.profile.apology
    assert notice.payload.author is Author.SYSTEM


async def test_429_then_500_then_504_are_retried_to_one_answer(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    await gemini.fault(status=429)
    await gemini.fault(status=504)
    turn = make_turn("third time lucky")
    completed = await finish(bus, turn)
    [answer] = await sent(bus, turn)
    assert answer.payload.text == "You said: third time lucky"
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert len(await gemini.requests()) == 3


async def test_an_unknown_tool_goes_back_to_the_model_and_does_not_poison_the_thread(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    await gemini.fault(parts=[call("launch_rockets", target="moon")])
    first = make_turn("hello")
    completed = await finish(bus, first)
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert [c.payload.text for c in await sent(bus, first)] == ["Done."]
    tool_result = (await gemini.requests())[1]["body"]["contents"][-1]["parts"][0]
    assert "no tool named" in str(tool_result["functionResponse"]["response"])

    # The next turn of the conversation carries that exchange in its history and is answered.
    second = make_turn("and now?", wa_id=first.payload.wa_id)
    completed = await finish(bus, second)
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert [c.payload.text for c in await sent(bus, second)] == ["You said: and now?"]


@pytest.mark.parametrize(
    "parts",
    [
        [call("offer_choices", text="Which?", choices=["only one"])],
        [call("offer_choices", text="", choices=[])],
        [call("request_intervention", reason=["not", "a", "string"])],
        [
            call("respond_with_media", media_ids=["no-such-id"]),
            call("offer_choices", text="Pick", choices=["A", "B"]),
        ],
        [{"functionCall": {"name": "respond_with_media"}}],  # no args at all
    ],
    ids=["one-choice", "empty-choices", "reason-a-list", "bad-media-and-choices", "no-args"],
)
async def test_odd_tool_calls_end_in_exactly_one_answer(
    agent: RunningAgent, bus: Bus, gemini: Gemini, parts: list[dict[str, Any]]
) -> None:
    await gemini.fault(parts=parts)
    turn = make_turn("hmm")
    completed = await finish(bus, turn)
    outputs = await sent(bus, turn)
    assert outputs, "the customer heard nothing"
    assert completed.payload.outputs == len(outputs)
    assert await logged(agent, turn.payload.turn_id) == [completed.payload.outcome.value]
    # Delivered again: nothing new.
    await handle_turn_ready(agent.ctx, turn)
    assert len(await sent(bus, turn)) == len(outputs)


async def test_the_same_turn_delivered_twice_at_once_is_answered_once(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    await gemini.fault(delay_ms=200, count=1)
    turn = make_turn("twice at once")
    again = turn.model_copy(update={"event_id": uuid.uuid4()})
    await asyncio.gather(handle_turn_ready(agent.ctx, turn), handle_turn_ready(agent.ctx, again))
    [answer] = await published(bus, turn)
    assert answer.payload.text == "You said: twice at once"
    assert len(await gemini.requests()) == 1
    assert await logged(agent, turn.payload.turn_id) == ["answered"]


# --- not mute after a failure and a handback ----------------------------------------------


async def test_after_a_failed_turn_and_a_handback_the_ai_answers_again(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    await gemini.fault(status=500, count=3)
    first = make_turn("hello?")
    wa_id, conversation_id = first.payload.wa_id, first.conversation_id
    assert conversation_id is not None
    assert (await finish(bus, first)).payload.outcome is TurnOutcome.FAILED
    [handoff] = [e for e in await events(bus, names.CONV_CONTROL) if e.payload.wa_id == wa_id]
    assert isinstance(handoff, InterventionRequested)

    # Waiting for a person: only recorded.
    waiting = make_turn("anyone?", wa_id=wa_id)
    assert (await finish(bus, waiting)).payload.outcome is TurnOutcome.RECORDED

    # The operator takes over and hands back (the operator-api's epochs: 2, 3).
    await bus.publish(control(ConversationTakenOver, wa_id, Mode.OPERATOR, 2))
    await bus.publish(control(ConversationHandedBack, wa_id, Mode.AI, 3))
    await wait_until(
        lambda: _epoch_is(agent, conversation_id, 3), timeout=10, what="handback stored"
    )
    calls = len(await gemini.requests())
    back = make_turn("so, my order?", wa_id=wa_id)
    completed = await finish(bus, back)
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    [answer] = await sent(bus, back)
    assert answer.payload.author is Author.AI
    assert answer.payload.control_epoch == 3
    request = (await gemini.requests())[calls]["body"]
    text = latest_user_text(request["contents"])
    assert BACK_FROM_A_PERSON in text
    assert "so, my order?" in text


async def _epoch_is(agent: RunningAgent, conversation_id: str, epoch: int) -> bool:
    return await stored_epoch(agent, conversation_id) == epoch


# --- control events twice or out of order --------------------------------------------------


async def test_handback_before_its_takeover_leaves_the_ai_answering(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    turn = make_turn("hi")
    wa_id, conversation_id = turn.payload.wa_id, turn.conversation_id
    assert conversation_id is not None
    handback = control(ConversationHandedBack, wa_id, Mode.AI, 2)
    takeover = control(ConversationTakenOver, wa_id, Mode.OPERATOR, 1)
    await handle_control_changed(agent.ctx, handback)
    await handle_control_changed(agent.ctx, takeover)  # late: older epoch
    await handle_control_changed(agent.ctx, handback)  # and the handback again
    completed = await finish(bus, turn)
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    [answer] = await sent(bus, turn)
    assert answer.payload.control_epoch == 2


async def test_a_takeover_delivered_twice_around_its_resolve_leaves_the_ai_answering(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    turn = make_turn("hello again")
    wa_id = turn.payload.wa_id
    takeover = control(ConversationTakenOver, wa_id, Mode.OPERATOR, 1)
    resolve = control(ConversationResolved, wa_id, Mode.RESOLVED, 2)
    await handle_control_changed(agent.ctx, takeover)
    await handle_control_changed(agent.ctx, resolve)
    await handle_control_changed(agent.ctx, takeover)  # redelivered after the resolve
    completed = await finish(bus, turn)
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert len(await sent(bus, turn)) == 1


async def test_a_takeover_arriving_after_a_later_handback_keeps_the_ai_quiet_only_while_due(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    # takeover 1, handback 2, takeover 3 delivered as 3, 1, 2: the AI must stay silent.
    turn = make_turn("is anyone there?")
    wa_id = turn.payload.wa_id
    await handle_control_changed(agent.ctx, control(ConversationTakenOver, wa_id, Mode.OPERATOR, 3))
    await handle_control_changed(agent.ctx, control(ConversationTakenOver, wa_id, Mode.OPERATOR, 1))
    await handle_control_changed(agent.ctx, control(ConversationHandedBack, wa_id, Mode.AI, 2))
    completed = await finish(bus, turn)
    assert completed.payload.outcome is TurnOutcome.RECORDED
    assert await sent(bus, turn) == []
    assert await gemini.requests() == []


# --- garbage on the input streams ----------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "event_type"),
    [
        (names.CONV_TURNS, "conversation.turn_ready"),
        (names.CONV_CONTROL, "conversation.taken_over"),
        (names.WA_OUTBOUND_RESULTS, "outbound.message_sent"),
    ],
)
async def test_garbage_on_an_input_stream_is_dead_lettered_with_its_cause(
    agent: RunningAgent, bus: Bus, gemini: Gemini, stream: str, event_type: str
) -> None:
    key = bus.key(stream)
    bad = [
        {"event_type": event_type, "schema_version": "1", "body": "{not json"},
        {"event_type": event_type, "schema_version": "one", "body": "{}"},
        {"event_type": event_type, "schema_version": "1", "body": '{"payload": 5}'},
        {"nothing": "here"},
    ]
    for fields in bad:
        await bus.redis.xadd(key, fields)

    async def dead() -> list[Any]:
        entries = await bus.redis.xrange(bus.key(names.dlq(stream)))
        return entries if len(entries) >= len(bad) else []

    dlq = await wait_until(dead, timeout=20, what="garbage dead-lettered")
    assert all(f.get("dlq_error") for _, f in dlq)
    # The agent still answers.
    turn = make_turn("still there?")
    completed = await finish(bus, turn)
    assert completed.payload.outcome is TurnOutcome.ANSWERED


async def test_a_turn_ready_on_the_wrong_stream_answers_nothing(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    # A TurnReady written to `conv.control` by mistake: not a control change, no answer.
    turn = make_turn("misrouted")
    await bus.publish(turn, stream=names.CONV_CONTROL)
    good = make_turn("routed")
    await finish(bus, good)
    assert await sent(bus, turn) == []
    assert [c.payload.kind for c in await sent(bus, good)] == [OutboundKind.TEXT]


# --- a Gemini that does not answer in time ----------------------------------------------------


@pytest.mark.parametrize("http_client", ["lean", "httpx"])
async def test_a_model_call_past_its_timeout_is_abandoned_and_retried(
    settings, bus: Bus, gemini: Gemini, http_client: str
) -> None:
    # The first call hangs past GEMINI_TIMEOUT_SECONDS: the client gives up on it (its late
    # answer must not be read as the answer of a later call on the same connection) and the
    # retry answers.
    from baton_agent.main import create_app

    values = {"gemini_timeout_seconds": 0.5, "gemini_http_client": http_client}
    app = create_app(settings.model_copy(update=values))
    async with app.router.lifespan_context(app):
        await gemini.fault(delay_ms=3000, count=1)
        turn = make_turn("are you awake?")
        completed = await finish(bus, turn)
        [answer] = await sent(bus, turn)
        assert answer.payload.text == "You said: are you awake?"
        assert completed.payload.outcome is TurnOutcome.ANSWERED
        assert len(await gemini.requests()) == 2
        # The next call on the same client reads its own answer, not the abandoned one.
        other = make_turn("second customer")
        await finish(bus, other)
        assert [c.payload.text for c in await sent(bus, other)] == ["You said: second customer"]
