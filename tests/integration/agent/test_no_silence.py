"""Never silence, whatever the model answers: a turn in `ai` mode either answers the
customer or tells them a person is coming, and a turn that answered is not retried."""

from __future__ import annotations

from typing import Any

import pytest

from baton_shared.events import Author, OutboundKind, TurnOutcome
from baton_shared.streams.bus import Bus

from .conftest import Gemini, RunningAgent, make_turn
from .test_turns import finish, sent

pytestmark = pytest.mark.integration

SCRIPTED = {"delay_ms": 1, "count": 1}  # a fault that leaves the scripted answer as it is


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"functionCall": {"name": name, "args": args}}


async def test_nothing_to_add_after_the_media_ends_the_turn(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    # The model sent the sample, then had nothing to add (a candidate without parts, which
    # the real API answers after a function response): the media was the answer.
    await gemini.fault(**SCRIPTED)
    await gemini.fault(parts=[])
    turn = make_turn("please send a sample")

    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert [c.payload.kind for c in await sent(bus, turn)] == [OutboundKind.IMAGE]
    assert len(await gemini.requests()) == 2  # no retry of the empty answer


async def test_a_handoff_whose_notice_never_came_sends_the_apology(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    await gemini.fault(**SCRIPTED)  # request_intervention
    await gemini.fault(parts=[])  # and then nothing for the customer
    turn = make_turn("I want a human")

    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.HANDED_OFF
    [notice] = await sent(bus, turn)
    assert notice.payload.text == agent.ctx.config.profile.apology
    assert notice.payload.author is Author.SYSTEM


async def test_tools_that_keep_failing_end_in_the_apology(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    # Every allowed model call asks for a media item the catalogue does not have.
    calls = agent.ctx.settings.max_model_calls
    await gemini.fault(parts=[call("respond_with_media", media_ids=["no-such-id"])], count=calls)
    turn = make_turn("please send a sample")

    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.FAILED
    [apology] = await sent(bus, turn)
    assert apology.payload.text == agent.ctx.config.profile.apology
    assert len(await gemini.requests()) == calls


async def test_a_handoff_on_the_last_allowed_call_still_tells_the_customer(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    calls = agent.ctx.settings.max_model_calls
    bad = [call("respond_with_media", media_ids=["no-such-id"])]
    await gemini.fault(parts=bad, count=calls - 1)
    await gemini.fault(parts=[call("request_intervention", reason="cannot find it")])
    turn = make_turn("please send a sample")

    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.HANDED_OFF
    [notice] = await sent(bus, turn)
    assert notice.payload.text == agent.ctx.config.profile.apology


@pytest.mark.parametrize(
    "args",
    [{"media_ids": 5}, {"media_ids": {"a": 1}}, {}],
    ids=["a number", "an object", "nothing"],
)
async def test_arguments_of_the_wrong_type_go_back_to_the_model(
    agent: RunningAgent, bus: Bus, gemini: Gemini, args: dict[str, Any]
) -> None:
    await gemini.fault(parts=[call("respond_with_media", **args)])
    turn = make_turn("please send a sample")

    completed = await finish(bus, turn)

    # The tool's error went back to the model, which answered (the scripted "Done.").
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert [c.payload.text for c in await sent(bus, turn)] == ["Done."]
    second = (await gemini.requests())[1]["body"]["contents"][-1]["parts"][0]
    assert "Error" in str(second["functionResponse"]["response"])
