"""After an operator resolves a conversation (`conversation.resolved` on `conv.control`) the
AI holds it again: the customer's next message gets exactly one AI answer, under the
resolve's epoch. While a person holds it (operator, pending_human) nothing is answered, and a
turn released before the resolve follows the agent's rules: the control at processing time
decides (the newer of the agent's copy and the operator-api's fencing hash), except for a
repeat of a turn whose first run only recorded it, which stays recorded.

The operator-api's side (events and fencing hash) is played by the test, with the states its
own control rules (`baton_operator_api.control`) give."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from baton_agent.db.models import conversations, turns
from baton_agent.db.repo import Control
from baton_agent.handlers.control_changed import CONSUMER as CONTROL_CONSUMER
from baton_agent.handlers.turn_ready import handle_turn_ready
from baton_agent.transcript import BACK_FROM_A_PERSON
from baton_devtools.gemini.script import latest_user_text
from baton_operator_api.auth import Role
from baton_operator_api.control import (
    ControlState,
    decide_intervention,
    decide_reopen,
    decide_resolve,
    decide_takeover,
)
from baton_shared.db.tables import inbox
from baton_shared.events import (
    Author,
    ControlChange,
    ConversationAwaitingHuman,
    ConversationReopened,
    ConversationResolved,
    ConversationTakenOver,
    Event,
    InterventionRequested,
    MessageSent,
    Mode,
    OutboundKind,
    OutboundOutcome,
    TurnOutcome,
    TurnReady,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, Gemini, RunningAgent, events, make_turn
from .test_control_race import write_hash
from .test_modes import operator_kept
from .test_turns import finish, sent, typing

pytestmark = pytest.mark.integration

OPERATOR = "ana"
# The note the model reads when a person had the conversation since its last answer.
BACK_NOTE = BACK_FROM_A_PERSON[:40]


class Conversation:
    """One customer's conversation, and the operator-api's part in it."""

    def __init__(self, agent: RunningAgent, bus: Bus, first: TurnReady) -> None:
        assert first.conversation_id is not None
        self.agent, self.bus = agent, bus
        self.wa_id = first.payload.wa_id
        self.id = first.conversation_id

    def turn(self, *texts: str) -> TurnReady:
        """A turn of this customer (as the buffer releases it)."""
        return make_turn(*texts, wa_id=self.wa_id)

    async def control_event(
        self, cls: type[Event], state: ControlState, *, hash_first: bool = True
    ) -> Event:
        """What the operator-api does on a control change: the fencing hash before its HTTP
        answer (unless `hash_first` is False), then the `conv.control` event; returns the
        event once the agent has consumed it."""
        if hash_first:
            await self.write_hash(state)
        change = ControlChange(
            phone_number_id=PHONE_NUMBER_ID,
            wa_id=self.wa_id,
            mode=state.mode,
            epoch=state.epoch,
            operator=state.operator,
        )
        event = cls.create(change, producer="operator-api", conversation_id=self.id)
        await self.bus.publish(event)
        await wait_until(lambda: self.consumed(event), what=f"{event.event_type} consumed")
        return event

    async def reopen(self, resolved: ControlState) -> None:
        """The customer writes to the resolved conversation: the operator-api reopens it to
        the AI under the same epoch."""
        reopened = decide_reopen(resolved)
        assert reopened == ControlState(Mode.AI, resolved.epoch)
        await self.control_event(ConversationReopened, reopened)

    async def write_hash(self, state: ControlState) -> None:
        """The fencing hash: a resolved conversation reads `ai` (nobody holds it)."""
        await write_hash(
            self.bus, self.id, Mode.AI if state.mode is Mode.RESOLVED else state.mode, state.epoch
        )

    async def consumed(self, event: Event) -> bool:
        """Whether the agent's `conv.control` consumer has processed `event`."""
        async with self.agent.ctx.db.session() as session:
            found = await session.scalar(
                select(inbox.c.event_id).where(
                    inbox.c.consumer == CONTROL_CONSUMER, inbox.c.event_id == event.event_id
                )
            )
        return found is not None

    async def stored(self) -> tuple[str, int] | None:
        """The control (mode, epoch) the agent stored for the conversation."""
        async with self.agent.ctx.db.session() as session:
            row = (
                await session.execute(
                    select(conversations.c.mode, conversations.c.epoch).where(
                        conversations.c.conversation_id == self.id
                    )
                )
            ).first()
        return None if row is None else (str(row.mode), int(row.epoch))

    async def logged(self, turn: TurnReady) -> list[tuple[str, int]]:
        """The turn log's (outcome, epoch) rows of `turn`: one row, one processing."""
        async with self.agent.ctx.db.session() as session:
            rows = await session.execute(
                select(turns.c.outcome, turns.c.epoch).where(
                    turns.c.turn_id == turn.payload.turn_id
                )
            )
        return [(str(outcome), int(epoch)) for outcome, epoch in rows]

    async def operator_says(self, text: str) -> None:
        """An operator's message, sent by the sender (`wa.outbound.results`)."""
        outcome = OutboundOutcome(
            command_id=str(uuid.uuid4()),
            phone_number_id=PHONE_NUMBER_ID,
            to=self.wa_id,
            author=Author.OPERATOR,
            kind=OutboundKind.TEXT,
            text=text,
            details={"operator": OPERATOR},
        )
        await self.bus.publish(
            MessageSent.create(outcome, producer="sender", conversation_id=self.id)
        )

        async def kept() -> bool:
            return any(text in kept for kept in await operator_kept(self.agent, self.id))

        await wait_until(kept, what="operator message kept")


async def answered_once(conv: Conversation, turn: TurnReady, epoch: int) -> str:
    """Process `turn` (and a redelivery of it): one AI answer, fenced by `epoch`; its text."""
    completed = await finish(conv.bus, turn)
    await handle_turn_ready(conv.agent.ctx, turn)  # the same entry again (ack lost)
    await handle_turn_ready(conv.agent.ctx, turn.model_copy(update={"event_id": uuid.uuid4()}))

    assert completed.payload.outcome is TurnOutcome.ANSWERED
    [answer] = await sent(conv.bus, turn)
    assert answer.payload.author is Author.AI
    assert answer.payload.control_epoch == epoch
    [shown] = await typing(conv.bus, turn)
    assert shown.payload.control_epoch == epoch
    assert await conv.logged(turn) == [("answered", epoch)]
    text = answer.payload.text
    assert text is not None
    return text


async def recorded_only(conv: Conversation, turn: TurnReady, gemini: Gemini) -> None:
    """Process `turn`: recorded in the thread, nothing sent, no model call."""
    calls = len(await gemini.requests())
    completed = await finish(conv.bus, turn)

    assert completed.payload.outcome is TurnOutcome.RECORDED
    assert await sent(conv.bus, turn) == []
    assert await typing(conv.bus, turn) == []
    assert len(await gemini.requests()) == calls


async def model_saw(gemini: Gemini, calls_before: int) -> str:
    """The history of the one model call made since `calls_before` calls."""
    requests = await gemini.requests()
    assert len(requests) == calls_before + 1, "exactly one model call for the turn"
    return str(requests[-1]["body"]["contents"])


async def test_resolve_after_a_takeover_gives_the_next_message_one_ai_answer(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    first = make_turn("Where is my order 881?")
    conv = Conversation(agent, bus, first)
    await answered_once(conv, first, epoch=0)

    held = decide_takeover(ControlState(Mode.AI, 0), OPERATOR, Role.OPERATOR)
    assert held == ControlState(Mode.OPERATOR, 1, OPERATOR)
    await conv.control_event(ConversationTakenOver, held)
    assert await conv.stored() == ("operator", 1)

    # While the operator holds it: recorded for the thread, never answered.
    during = conv.turn("Hello? Anyone there about 881?")
    await recorded_only(conv, during, gemini)
    promise = "Ana here: order 881 ships today with express delivery."
    await conv.operator_says(promise)

    resolved = decide_resolve(held, OPERATOR, Role.OPERATOR)
    assert resolved == ControlState(Mode.RESOLVED, 2)
    await conv.control_event(ConversationResolved, resolved)
    assert await conv.stored() == ("resolved", 2)

    # The customer writes again: the operator-api reopens it under the same epoch.
    await conv.reopen(resolved)
    calls = len(await gemini.requests())
    after = conv.turn("Great, and can I change the address?")
    text = await answered_once(conv, after, epoch=2)

    assert "can I change the address?" in text
    history = await model_saw(gemini, calls)
    # In order: the message sent while Ana held it, her promise, the note, the new message.
    marks = ["Anyone there about 881?", promise, BACK_NOTE, "can I change the address?"]
    positions = [history.index(mark) for mark in marks]
    assert positions == sorted(positions)
    assert history.count(promise) == 1
    assert history.count(BACK_NOTE) == 1
    assert await operator_kept(agent, conv.id) == []  # carried into the thread once

    # And it stays with the AI: the next message is answered once, no note this time.
    calls = len(await gemini.requests())
    again = conv.turn("Thanks!")
    await answered_once(conv, again, epoch=2)
    await model_saw(gemini, calls)
    assert latest_user_text((await gemini.requests())[-1]["body"]["contents"]) == "Thanks!"


async def test_resolve_of_a_pending_human_conversation_gives_it_back_to_the_ai(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    ask = make_turn("I want to talk to a human")
    conv = Conversation(agent, bus, ask)
    completed = await finish(bus, ask)
    assert completed.payload.outcome is TurnOutcome.HANDED_OFF
    [request] = [e for e in await events(bus, names.CONV_CONTROL) if e.conversation_id == conv.id]
    assert isinstance(request, InterventionRequested)
    assert await conv.stored() == ("pending_human", 1)

    # The operator-api accepts the request: pending_human, queued for a person.
    waiting = decide_intervention(ControlState(Mode.AI, 0), request.payload.epoch)
    assert waiting == ControlState(Mode.PENDING_HUMAN, 1)
    await conv.control_event(ConversationAwaitingHuman, waiting)

    await recorded_only(conv, conv.turn("hello?? still waiting"), gemini)

    # An operator resolves it without taking it over.
    resolved = decide_resolve(waiting, OPERATOR, Role.OPERATOR)
    assert resolved == ControlState(Mode.RESOLVED, 2)
    await conv.control_event(ConversationResolved, resolved)
    assert await conv.stored() == ("resolved", 2)

    calls = len(await gemini.requests())
    after = conv.turn("ok, what are your opening hours?")
    text = await answered_once(conv, after, epoch=2)
    assert "opening hours?" in text
    history = await model_saw(gemini, calls)
    assert history.index("still waiting") < history.index(BACK_NOTE)
    assert history.index(BACK_NOTE) < history.index("opening hours?")


@pytest.mark.parametrize("event_consumed", [False, True], ids=["hash-only", "event-consumed"])
async def test_a_turn_released_before_the_resolve_and_processed_after_is_answered(
    agent: RunningAgent, bus: Bus, gemini: Gemini, event_consumed: bool
) -> None:
    """The customer wrote while Ana held the conversation; the buffer released the turn, and
    before the agent picked it up Ana resolved. The control at processing time decides: the
    hash (written before the resolve's 200) is ahead even when the event is not consumed yet,
    so the turn is answered once, under the resolve's epoch, which the sender lets through."""
    first = make_turn("hi")
    conv = Conversation(agent, bus, first)
    held = ControlState(Mode.OPERATOR, 1, OPERATOR)
    await conv.control_event(ConversationTakenOver, held)
    await recorded_only(conv, first, gemini)

    released = conv.turn("is my refund approved?")  # released while Ana held it
    resolved = decide_resolve(held, OPERATOR, Role.OPERATOR)
    assert resolved is not None
    if event_consumed:
        await conv.control_event(ConversationResolved, resolved)
    else:  # the operator-api answered 200; its event has not reached the agent yet
        await conv.write_hash(resolved)

    calls = len(await gemini.requests())
    text = await answered_once(conv, released, epoch=2)
    assert "refund approved?" in text
    assert BACK_NOTE in await model_saw(gemini, calls)
    assert (await conv.stored() or ("", 0))[1] == 2

    # The resolve's event arriving late changes nothing: the next message is answered once.
    if not event_consumed:
        await conv.control_event(ConversationResolved, resolved, hash_first=False)
    await answered_once(conv, conv.turn("thanks"), epoch=2)


async def recorded_then_resolved(agent: RunningAgent, bus: Bus) -> tuple[Conversation, TurnReady]:
    """A turn the agent ran under Ana (only recorded, checkpoint written) before dying ahead of
    its commit; then Ana resolved. Returns the conversation and the turn to redeliver."""
    first = make_turn("hi")
    conv = Conversation(agent, bus, first)
    held = ControlState(Mode.OPERATOR, 1, OPERATOR)
    await conv.control_event(ConversationTakenOver, held)

    turn = conv.turn("can someone call me?")
    run = await agent.ctx.threads.run_turn(conv.id, turn.payload, Control(Mode.OPERATOR, 1))
    assert run.outputs == []  # then the process died: no turn log, no outbox
    resolved = decide_resolve(held, OPERATOR, Role.OPERATOR)
    assert resolved is not None
    await conv.control_event(ConversationResolved, resolved)
    return conv, turn


async def test_a_turn_recorded_under_the_operator_and_redelivered_after_the_resolve_stays_recorded(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    """A repeat returns what its first run decided: the redelivery commits the turn as
    recorded under Ana's epoch, so no late AI answer to it (Ana had it), and the customer's
    next message is answered once."""
    conv, turn = await recorded_then_resolved(agent, bus)

    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.RECORDED
    assert await sent(bus, turn) == []
    assert await gemini.requests() == []
    assert await conv.logged(turn) == [("recorded", 1)]
    await answered_once(conv, conv.turn("hello again"), epoch=2)


async def test_a_recorded_turn_redelivered_after_the_resolve_shows_no_typing(
    agent: RunningAgent, bus: Bus
) -> None:
    """The same repeat: no answer follows, so the customer must not see the AI "typing..."
    (nor get a read receipt from it), as for every turn that is only recorded."""
    _, turn = await recorded_then_resolved(agent, bus)

    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.RECORDED
    assert await typing(bus, turn) == []


async def test_a_resolve_racing_the_ais_handoff_leaves_the_conversation_to_the_ai(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    """The AI hands off (pending_human under epoch 1, the epoch after its turn's 0) while an
    operator resolves the conversation (resolved under epoch 1 too: the operator-api saw it in
    `ai` at 0). The operator-api's rules say the resolve wins: the AI's request is stale and
    ignored, the fencing hash says `ai` at 1, and the customer's next message reopens the
    conversation to the AI. So the AI must answer that message, once."""
    ask = make_turn("I want to talk to a human")
    conv = Conversation(agent, bus, ask)
    # The operator-api's view of the race: its resolve commits first (from ai at epoch 0).
    resolved = decide_resolve(ControlState(Mode.AI, 0), OPERATOR, Role.OPERATOR)
    assert resolved == ControlState(Mode.RESOLVED, 1)

    completed = await finish(bus, ask)  # the turn read ai at 0 before the resolve landed
    assert completed.payload.outcome is TurnOutcome.HANDED_OFF
    [request] = [e for e in await events(bus, names.CONV_CONTROL) if e.conversation_id == conv.id]
    assert isinstance(request, InterventionRequested)
    assert request.payload.epoch == 1
    # The request reaches the operator-api after its resolve: stale, no pending_human.
    assert decide_intervention(resolved, request.payload.epoch) is None
    # The resolve's hash and event reach the agent after the turn's commit.
    await conv.control_event(ConversationResolved, resolved)
    await conv.reopen(resolved)

    calls = len(await gemini.requests())
    after = conv.turn("never mind, what time do you close?")
    text = await answered_once(conv, after, epoch=1)
    assert "what time do you close?" in text
    assert len(await gemini.requests()) == calls + 1
