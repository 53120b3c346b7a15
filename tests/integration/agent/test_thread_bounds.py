"""A conversation's thread keeps at most AGENT_THREAD_MESSAGES messages: a conversation that
lives for months must not make every checkpoint write carry all of it."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.messages import AnyMessage

from baton_agent.settings import AgentSettings
from baton_shared.events import (
    ControlChange,
    ConversationTakenOver,
    Mode,
    TurnOutcome,
)
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, Gemini, RunningAgent, make_turn
from .test_modes import stored_epoch
from .test_turns import finish, sent

pytestmark = pytest.mark.integration

KEEP = 6


@pytest.fixture
def settings(settings: AgentSettings) -> AgentSettings:
    return settings.model_copy(update={"history_messages": 4, "thread_messages": KEEP})


async def thread(agent: RunningAgent, conversation_id: str) -> list[AnyMessage]:
    state = await agent.ctx.threads.graph.aget_state(
        {"configurable": {"thread_id": conversation_id}}
    )
    return list(state.values.get("messages", []))


async def test_old_messages_leave_the_thread_and_answers_go_on(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    wa_id = f"34{uuid.uuid4().int % 10**10:010d}"
    turns = [make_turn(f"message number {i}", wa_id=wa_id) for i in range(1, 8)]
    for turn in turns:
        completed = await finish(bus, turn)
        assert completed.payload.outcome is TurnOutcome.ANSWERED

    # Every turn was answered, the last one too, from what the thread still held.
    [last] = await sent(bus, turns[-1])
    assert last.payload.text == "You said: message number 7"
    conversation_id = turns[0].conversation_id
    assert conversation_id is not None
    messages = await thread(agent, conversation_id)
    # Trimmed to KEEP before the turn's model call, plus that call's answer.
    assert len(messages) <= KEEP + 1
    texts = [str(m.content) for m in messages]
    assert not any("message number 1" in t for t in texts)
    assert any("message number 7" in t for t in texts)
    # The model was still shown at most AGENT_HISTORY_MESSAGES of it.
    request = (await gemini.requests())[-1]
    assert len(request["body"]["contents"]) <= 4


async def test_turns_recorded_while_a_person_holds_the_conversation_are_trimmed_too(
    agent: RunningAgent, bus: Bus
) -> None:
    wa_id = f"34{uuid.uuid4().int % 10**10:010d}"
    turns = [make_turn(f"note {i}", wa_id=wa_id) for i in range(1, 11)]
    conversation_id = turns[0].conversation_id
    assert conversation_id is not None
    change = ControlChange(
        phone_number_id=PHONE_NUMBER_ID, wa_id=wa_id, mode=Mode.OPERATOR, epoch=1, operator="ana"
    )
    await bus.publish(
        ConversationTakenOver.create(change, producer="test", conversation_id=conversation_id)
    )

    async def held() -> bool:
        return await stored_epoch(agent, conversation_id) == 1

    await wait_until(held, what="takeover stored")
    for turn in turns:
        assert (await finish(bus, turn)).payload.outcome is TurnOutcome.RECORDED

    texts = [str(m.content) for m in await thread(agent, conversation_id)]
    assert len(texts) <= KEEP + 1
    assert any("note 10" in t for t in texts)
    assert not any(t.endswith("note 1") for t in texts)
