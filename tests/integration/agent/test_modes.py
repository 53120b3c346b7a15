"""Who answers: operator and pending_human silence the AI, operator messages enter the
thread, and handback lets the model read what the person said."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from baton_agent.db.models import conversations, operator_messages
from baton_shared.events import (
    Author,
    ControlChange,
    ConversationHandedBack,
    ConversationTakenOver,
    MessageSent,
    Mode,
    OutboundKind,
    OutboundOutcome,
    TurnOutcome,
)
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, Gemini, RunningAgent, make_turn
from .test_turns import finish, sent

pytestmark = pytest.mark.integration


async def stored_epoch(agent: RunningAgent, conversation_id: str) -> int:
    async with agent.ctx.db.session() as session:
        epoch = await session.scalar(
            select(conversations.c.epoch).where(conversations.c.conversation_id == conversation_id)
        )
    return int(epoch or 0)


async def test_operator_mode_records_without_answering_and_handback_remembers(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    first = make_turn("My order 123 arrived broken")
    wa_id, conversation_id = first.payload.wa_id, first.conversation_id
    assert conversation_id is not None

    def change(mode: Mode, epoch: int) -> ControlChange:
        return ControlChange(
            phone_number_id=PHONE_NUMBER_ID, wa_id=wa_id, mode=mode, epoch=epoch, operator="ana"
        )

    await bus.publish(
        ConversationTakenOver.create(
            change(Mode.OPERATOR, 1), producer="test", conversation_id=conversation_id
        )
    )
    await wait_until(lambda: stored_epoch(agent, conversation_id), what="takeover stored")

    completed = await finish(bus, first)
    assert completed.payload.outcome is TurnOutcome.RECORDED
    assert await sent(bus, first) == []
    assert await gemini.requests() == []

    promise = "I am sending you a new one tomorrow, free of charge."
    operator_sent = MessageSent.create(
        OutboundOutcome(
            command_id=str(uuid.uuid4()),
            phone_number_id=PHONE_NUMBER_ID,
            to=wa_id,
            author=Author.OPERATOR,
            kind=OutboundKind.TEXT,
            text=promise,
            details={"operator": "ana"},
        ),
        producer="test",
        conversation_id=conversation_id,
    )
    await bus.publish(operator_sent)

    await wait_until(lambda: operator_kept(agent, conversation_id), what="operator message kept")

    await bus.publish(
        ConversationHandedBack.create(
            change(Mode.AI, 2), producer="test", conversation_id=conversation_id
        )
    )
    await wait_until(lambda: _epoch_is(agent, conversation_id, 2), what="handback stored")
    second = make_turn("thanks, when exactly?", wa_id=wa_id)
    completed = await finish(bus, second)

    assert completed.payload.outcome is TurnOutcome.ANSWERED
    [answer] = await sent(bus, second)
    assert answer.payload.control_epoch == 2
    [request] = await gemini.requests()
    history = str(request["body"]["contents"])
    # In the order it happened: the customer, the operator's promise, the customer again.
    positions = [history.index(t) for t in ("arrived broken", promise, "when exactly?")]
    assert positions == sorted(positions)
    assert history.count(promise) == 1
    assert await operator_kept(agent, conversation_id) == []  # carried: not carried again
    # The model is told the conversation is back from a person, right before the customer.
    back = history.index("a person from the team had this conversation")
    assert positions[1] < back < positions[2]
    assert history.count("a person from the team had this conversation") == 1


async def operator_kept(agent: RunningAgent, conversation_id: str) -> list[str]:
    """Operator messages waiting for the conversation's next turn."""
    async with agent.ctx.db.session() as session:
        rows = await session.execute(
            select(operator_messages.c.text).where(
                operator_messages.c.conversation_id == conversation_id,
                operator_messages.c.turn_id.is_(None),
            )
        )
        return [str(text) for (text,) in rows]


async def _epoch_is(agent: RunningAgent, conversation_id: str, epoch: int) -> bool:
    return await stored_epoch(agent, conversation_id) == epoch


async def test_older_control_epochs_are_ignored(agent: RunningAgent, bus: Bus) -> None:
    turn = make_turn("hi")
    conversation_id = turn.conversation_id
    assert conversation_id is not None
    newer = ControlChange(
        phone_number_id=PHONE_NUMBER_ID, wa_id=turn.payload.wa_id, mode=Mode.AI, epoch=5
    )
    older = newer.model_copy(update={"mode": Mode.OPERATOR, "epoch": 4})
    await bus.publish(
        ConversationHandedBack.create(newer, producer="t", conversation_id=conversation_id)
    )
    await bus.publish(
        ConversationTakenOver.create(older, producer="t", conversation_id=conversation_id)
    )
    await wait_until(lambda: _epoch_is(agent, conversation_id, 5), what="epoch 5")

    completed = await finish(bus, turn)  # the stale takeover must not silence the AI
    assert completed.payload.outcome is TurnOutcome.ANSWERED


async def test_every_part_of_a_long_operator_message_reaches_the_model(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    # The sender splits a long text into parts, one MessageSent each, under one command id.
    first = make_turn("hello")
    wa_id, conversation_id = first.payload.wa_id, first.conversation_id
    assert conversation_id is not None
    await finish(bus, first)
    turn = make_turn("and then?", wa_id=wa_id)
    command_id = str(uuid.uuid4())
    for n, text in enumerate(["First part of a long answer.", "Second part of it."]):
        part = MessageSent.create(
            OutboundOutcome(
                command_id=command_id,
                phone_number_id=PHONE_NUMBER_ID,
                to=wa_id,
                author=Author.OPERATOR,
                kind=OutboundKind.TEXT,
                text=text,
                wa_message_id=f"wamid.out.{command_id}.{n}",
            ),
            producer="test",
            conversation_id=conversation_id,
        )
        await bus.publish(part)
        await bus.publish(part)  # a redelivery is kept once

    async def both_kept() -> bool:
        return len(await operator_kept(agent, conversation_id)) == 2

    await wait_until(both_kept, what="both parts kept")
    await finish(bus, turn)
    request = (await gemini.requests())[-1]
    history = str(request["body"]["contents"])
    assert history.count("First part of a long answer.") == 1
    assert history.count("Second part of it.") == 1
