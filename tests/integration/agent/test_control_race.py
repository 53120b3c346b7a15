"""The fencing hash is newer than the agent's copy: a turn arrives between the operator-api's
200 and the agent consuming its `conv.control` event. The agent must follow the hash."""

from __future__ import annotations

import pytest

from baton_shared.events import ControlChange, ConversationTakenOver, Mode, TurnOutcome
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, Gemini, RunningAgent, make_turn
from .test_modes import stored_epoch
from .test_turns import finish, sent

pytestmark = pytest.mark.integration


async def write_hash(bus: Bus, conversation_id: str, mode: Mode, epoch: int) -> None:
    """What the operator-api writes before its HTTP answer (no `conv.control` event yet)."""
    await bus.redis.hset(
        bus.key(names.control_state(conversation_id)),
        mapping={"mode": mode.value, "epoch": epoch, "operator": "" if mode is Mode.AI else "ana"},
    )


async def test_handback_in_the_hash_only_is_answered(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    first = make_turn("hello")
    wa_id, conversation_id = first.payload.wa_id, first.conversation_id
    assert conversation_id is not None
    takeover = ControlChange(
        phone_number_id=PHONE_NUMBER_ID, wa_id=wa_id, mode=Mode.OPERATOR, epoch=1, operator="ana"
    )
    await bus.publish(
        ConversationTakenOver.create(takeover, producer="test", conversation_id=conversation_id)
    )
    await write_hash(bus, conversation_id, Mode.OPERATOR, 1)
    await wait_until(lambda: stored_epoch(agent, conversation_id), what="takeover stored")

    # Handback: the hash says ai at epoch 2; `conversation.handed_back` is not delivered yet.
    await write_hash(bus, conversation_id, Mode.AI, 2)
    turn = make_turn("are you back?", wa_id=wa_id)
    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.ANSWERED
    [answer] = await sent(bus, turn)
    assert answer.payload.control_epoch == 2
    assert await stored_epoch(agent, conversation_id) == 2  # the hash's state is now local


async def test_takeover_in_the_hash_only_is_recorded_not_answered(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    turn = make_turn("hello?")
    conversation_id = turn.conversation_id
    assert conversation_id is not None
    await write_hash(bus, conversation_id, Mode.OPERATOR, 3)

    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.RECORDED
    assert await sent(bus, turn) == []
    assert await gemini.requests() == []
    assert await stored_epoch(agent, conversation_id) == 3


async def test_an_older_hash_does_not_override_the_agent(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    first = make_turn("hi")
    wa_id, conversation_id = first.payload.wa_id, first.conversation_id
    assert conversation_id is not None
    takeover = ControlChange(
        phone_number_id=PHONE_NUMBER_ID, wa_id=wa_id, mode=Mode.OPERATOR, epoch=4, operator="ana"
    )
    await bus.publish(
        ConversationTakenOver.create(takeover, producer="test", conversation_id=conversation_id)
    )
    await wait_until(lambda: stored_epoch(agent, conversation_id), what="takeover stored")
    await write_hash(bus, conversation_id, Mode.AI, 3)  # stale copy

    completed = await finish(bus, first)

    assert completed.payload.outcome is TurnOutcome.RECORDED
    assert await stored_epoch(agent, conversation_id) == 4
