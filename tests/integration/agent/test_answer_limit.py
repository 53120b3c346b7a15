"""AGENT_MAX_ANSWERS_PER_HOUR: a conversation answered that often within the hour (most often
an auto-responder on the customer's side answering every answer of ours, for ever) goes to a
person without another model call; a handback, or an hour, starts a new count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from baton_agent.db.models import turns
from baton_agent.db.repo import AI_CONTROL
from baton_agent.main import create_app
from baton_agent.settings import AgentSettings
from baton_shared.events import (
    Author,
    ControlChange,
    ConversationHandedBack,
    InterventionRequested,
    Mode,
    TurnOutcome,
    TurnReady,
    utcnow,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, Gemini, RunningAgent, events, make_turn
from .test_modes import stored_epoch
from .test_turns import finish, sent

pytestmark = pytest.mark.integration

LIMIT = 2


@pytest.fixture
def settings(settings: AgentSettings) -> AgentSettings:
    """Two AI answers per conversation and hour."""
    return settings.model_copy(update={"max_answers_per_hour": LIMIT})


async def converse(bus: Bus, wa_id: str, *texts: str) -> list[TurnReady]:
    """One turn per text from the customer, each finished before the next."""
    done = []
    for text in texts:
        turn = make_turn(text, wa_id=wa_id)
        await finish(bus, turn)
        done.append(turn)
    return done


async def test_the_turn_after_the_limit_goes_to_a_person_without_a_model_call(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    wa_id = make_turn("x").payload.wa_id
    await converse(bus, wa_id, "Thanks for your message!", "Thanks for your message!!")
    assert len(await gemini.requests()) == LIMIT

    third = make_turn("Thanks for your message!!!", wa_id=wa_id)
    completed = await finish(bus, third)

    assert completed.payload.outcome is TurnOutcome.HANDED_OFF
    assert len(await gemini.requests()) == LIMIT  # the model was not asked
    [notice] = await sent(bus, third)
    assert notice.payload.text == agent.ctx.config.profile.apology
    assert notice.payload.author is Author.SYSTEM  # reaches them though the AI is fenced now
    [intervention] = await events(bus, names.CONV_CONTROL)
    assert isinstance(intervention, InterventionRequested)
    assert intervention.payload.mode is Mode.PENDING_HUMAN
    assert intervention.payload.reason is not None
    assert f"{LIMIT} AI answers within an hour" in intervention.payload.reason

    # The other bot answers the notice: recorded for the person, not answered.
    fourth = make_turn("Thanks for your message!!!!", wa_id=wa_id)
    assert (await finish(bus, fourth)).payload.outcome is TurnOutcome.RECORDED
    assert await sent(bus, fourth) == []
    assert len(await gemini.requests()) == LIMIT


async def test_a_limited_turn_killed_before_its_commit_still_sends_one_notice(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    # Invariant 3 on this path: the graph handed off (checkpoint written), then the process
    # died before the turn log and outbox commit; the redelivery reuses the checkpoint.
    wa_id = make_turn("x").payload.wa_id
    await converse(bus, wa_id, "one", "two")
    third = make_turn("three", wa_id=wa_id)
    assert third.conversation_id is not None
    first = await agent.ctx.threads.run_turn(
        third.conversation_id, third.payload, AI_CONTROL, limited=True
    )
    assert await sent(bus, third) == []

    completed = await finish(bus, third)

    [notice] = await sent(bus, third)
    assert notice.payload.text == first.outputs[0]["text"] == agent.ctx.config.profile.apology
    assert completed.payload.outcome is TurnOutcome.HANDED_OFF
    assert len(await gemini.requests()) == LIMIT


async def test_a_handback_starts_a_new_count(agent: RunningAgent, bus: Bus, gemini: Gemini) -> None:
    wa_id = make_turn("x").payload.wa_id
    await converse(bus, wa_id, "one", "two", "three")  # the third handed off (epoch 1)
    conversation_id = make_turn("x", wa_id=wa_id).conversation_id
    assert conversation_id is not None
    handback = ControlChange(
        phone_number_id=PHONE_NUMBER_ID, wa_id=wa_id, mode=Mode.AI, epoch=2, operator="ana"
    )
    await bus.publish(
        ConversationHandedBack.create(handback, producer="test", conversation_id=conversation_id)
    )

    async def handed_back() -> bool:
        return await stored_epoch(agent, conversation_id) == 2

    await wait_until(handed_back, what="handback stored")
    again = await converse(bus, wa_id, "four", "five")
    for turn in again:
        [answer] = await sent(bus, turn)
        assert answer.payload.author is Author.AI
    assert len(await gemini.requests()) == LIMIT + 2


async def test_answers_older_than_an_hour_do_not_count(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    wa_id = make_turn("x").payload.wa_id
    earlier = await converse(bus, wa_id, "one", "two")
    async with agent.ctx.db.session() as session:
        await session.execute(
            update(turns)
            .where(turns.c.turn_id.in_([t.payload.turn_id for t in earlier]))
            .values(completed_at=utcnow() - timedelta(minutes=61))
        )

    [later] = await converse(bus, wa_id, "three")
    [answer] = await sent(bus, later)
    assert answer.payload.author is Author.AI
    assert len(await gemini.requests()) == LIMIT + 1


async def test_no_limit_when_zero(settings: AgentSettings, bus: Bus, gemini: Gemini) -> None:
    # Its own app rather than the `agent` fixture, which has LIMIT.
    app = create_app(settings.model_copy(update={"max_answers_per_hour": 0}))
    async with app.router.lifespan_context(app):
        wa_id = make_turn("x").payload.wa_id
        done = await converse(bus, wa_id, "one", "two", "three", "four")
    for turn in done:
        [answer] = await sent(bus, turn)
        assert answer.payload.author is Author.AI
    assert len(await gemini.requests()) == 4
