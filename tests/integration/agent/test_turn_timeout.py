"""`AGENT_TURN_TIMEOUT_SECONDS`: a turn's model work is bounded, however the model behaves;
past it the customer gets the apology and a person the conversation, never silence."""

from __future__ import annotations

import pytest

from baton_agent.settings import AgentSettings
from baton_shared.events import TurnOutcome
from baton_shared.streams.bus import Bus

from .conftest import Gemini, RunningAgent, make_turn
from .test_turns import finish, sent

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(settings: AgentSettings) -> AgentSettings:
    """One second per turn, against a client timeout of ten and three tries."""
    return settings.model_copy(update={"turn_timeout_seconds": 1.0})


async def test_a_model_slower_than_the_turn_allows_ends_in_the_apology(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    # Each call would answer after 3 s, within the client's 10 s timeout: three tries would
    # keep the customer waiting 9 s. The turn stops at its deadline instead.
    await gemini.fault(delay_ms=3000)
    turn = make_turn("hello?")

    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.FAILED
    [apology] = await sent(bus, turn)
    assert apology.payload.text == agent.ctx.config.profile.apology
    assert len(await gemini.requests()) == 1  # no retry started past the deadline
