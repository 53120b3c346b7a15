"""A turn that fails at every delivery (a fault in the agent, a message it cannot read) is
not silence: at its last delivery the customer gets the apology, a person is asked for, the
buffer hears the turn is done, and the entry is still dead-lettered with its cause."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from baton_agent import consumer
from baton_agent.context import AgentContext
from baton_agent.handlers.turn_ready import give_up_on_turn
from baton_agent.main import create_app
from baton_agent.settings import AgentSettings
from baton_shared.events import Author, InterventionRequested, TurnOutcome, TurnReady
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import Gemini, events, make_turn
from .test_turns import finish, sent

pytestmark = pytest.mark.integration


@pytest.fixture
async def failing_agent(
    settings: AgentSettings, gemini: Gemini, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AgentContext]:
    """The agent with every turn failing on a fault of its own, retried twice."""
    tries: list[int] = []

    async def broken(ctx: AgentContext, event: TurnReady) -> None:
        tries.append(1)
        raise RuntimeError("a fault in the agent")

    monkeypatch.setattr(consumer, "handle_turn_ready", broken)
    fast = settings.model_copy(update={"max_deliveries": 2, "reclaim_idle_ms": 100})
    app = create_app(fast)
    async with app.router.lifespan_context(app):
        yield app.state.agent
    assert len(tries) == 2  # every delivery tried, the last one too


async def dead_letters(bus: Bus) -> list[dict[str, Any]]:
    entries = await bus.redis.xrange(bus.key(names.dlq(names.CONV_TURNS)))
    return [fields for _, fields in entries]


async def test_the_last_delivery_of_a_failing_turn_apologises_and_asks_for_a_person(
    failing_agent: AgentContext, bus: Bus, gemini: Gemini
) -> None:
    turn = make_turn("where is my order?")

    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.FAILED
    [apology] = await sent(bus, turn)
    assert apology.payload.text == failing_agent.config.profile.apology
    assert apology.payload.author is Author.SYSTEM  # the notice goes out though a person comes
    [handoff] = [
        e for e in await events(bus, names.CONV_CONTROL) if isinstance(e, InterventionRequested)
    ]
    assert handoff.payload.reason is not None
    assert "RuntimeError" in handoff.payload.reason
    [dead] = await wait_until(lambda: dead_letters(bus), timeout=20, what="the dead letter")
    assert "a fault in the agent" in dead["dlq_error"]
    assert await gemini.requests() == []


async def test_a_failing_turn_while_a_person_holds_the_conversation_is_only_recorded(
    failing_agent: AgentContext, bus: Bus
) -> None:
    turn = make_turn("are you there?")
    conversation_id = str(turn.conversation_id)
    fence = bus.key(names.control_state(conversation_id))
    await bus.redis.hset(fence, mapping={"mode": "human", "epoch": "1", "operator": "ana"})

    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.RECORDED
    assert await sent(bus, turn) == []
    assert not [
        e for e in await events(bus, names.CONV_CONTROL) if isinstance(e, InterventionRequested)
    ]


async def test_giving_up_on_a_turn_already_answered_sends_nothing_more(
    settings: AgentSettings, gemini: Gemini, bus: Bus
) -> None:
    # Invariant 3: another delivery of the turn answered it (say, a replica that finished
    # after this one failed); the safety net must not add an apology to that answer.
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        ctx: AgentContext = app.state.agent
        turn = make_turn("hello there")
        completed = await finish(bus, turn)
        assert completed.payload.outcome is TurnOutcome.ANSWERED

        await give_up_on_turn(ctx, turn, RuntimeError("a late failure elsewhere"))

        [answer] = await sent(bus, turn)
        assert answer.payload.text == "You said: hello there"
        assert not [
            e for e in await events(bus, names.CONV_CONTROL) if isinstance(e, InterventionRequested)
        ]
