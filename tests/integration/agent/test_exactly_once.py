"""Invariant 3: every turn gets exactly one answer — redelivered, repeated, or interrupted
by a crash between the model call and the commit, or after the commit."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.runnables import RunnableConfig
from sqlalchemy import select

from baton_agent.db.models import turns
from baton_agent.db.repo import AI_CONTROL, Control
from baton_agent.handlers.turn_ready import handle_turn_ready
from baton_agent.runner import start_state
from baton_shared.events import (
    Author,
    InterventionRequested,
    Mode,
    OutboundKind,
    TurnOutcome,
    command_id_for,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus

from .conftest import Gemini, RunningAgent, events, make_turn
from .test_control_race import write_hash
from .test_modes import stored_epoch
from .test_turns import finish, sent, typing

pytestmark = pytest.mark.integration


async def logged(agent: RunningAgent, turn_id: uuid.UUID) -> list[str]:
    """Outcomes in the turn log for the turn: one row means one processing."""
    async with agent.ctx.db.session() as session:
        rows = (await session.execute(select(turns).where(turns.c.turn_id == turn_id))).all()
    return [r.outcome for r in rows]


async def test_redelivered_turn_gets_no_second_answer(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    turn = make_turn("hello")
    await finish(bus, turn)

    await handle_turn_ready(agent.ctx, turn)  # the same entry again (e.g. ack lost)
    again = turn.model_copy(update={"event_id": uuid.uuid4()})  # the same turn, re-released
    await handle_turn_ready(agent.ctx, again)

    assert len(await sent(bus, turn)) == 1
    assert len(await gemini.requests()) == 1
    assert await logged(agent, turn.payload.turn_id) == ["answered"]


async def test_crash_between_model_call_and_commit_answers_once_with_same_ids(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    turn = make_turn("what are your opening hours?")
    assert turn.conversation_id is not None
    # The graph ran (model answered, checkpoint written), then the process died before the
    # turn log and outbox commit: nothing was published.
    first = await agent.ctx.threads.run_turn(turn.conversation_id, turn.payload, AI_CONTROL)
    assert await sent(bus, turn) == []

    completed = await finish(bus, turn)  # the redelivery after the crash
    await handle_turn_ready(agent.ctx, turn)  # and once more: already logged, nothing new

    [answer] = await sent(bus, turn)
    # Typing shows again on a re-run before the commit, under the same command id: the
    # sender sends it once.
    assert {t.payload.command_id for t in await typing(bus, turn)} == {
        command_id_for(f"{turn.payload.turn_id}:typing", 0)
    }
    assert answer.payload.text == first.outputs[0]["text"]
    assert answer.payload.command_id == command_id_for(str(turn.payload.turn_id), 0)
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert len(await gemini.requests()) == 1  # the checkpoint's answer was reused


async def test_crash_after_commit_publishes_once(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    turn = make_turn("hi there")
    await handle_turn_ready(agent.ctx, turn)  # committed; crash before the ack
    await finish(bus, turn)  # the consumer sees the entry (again)

    assert len(await sent(bus, turn)) == 1
    assert len(await gemini.requests()) == 1
    assert await logged(agent, turn.payload.turn_id) == ["answered"]


async def test_model_errors_are_retried(agent: RunningAgent, bus: Bus, gemini: Gemini) -> None:
    await gemini.fault(status=429, count=1)
    await gemini.fault(status=500, count=1)
    turn = make_turn("hello after errors")
    completed = await finish(bus, turn)

    [answer] = await sent(bus, turn)
    assert answer.payload.text == "You said: hello after errors"
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert len(await gemini.requests()) == 3


async def test_model_failure_apologises_and_hands_off(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    await gemini.fault(status=500, count=3)  # every try (GEMINI_RETRIES=3) fails
    turn = make_turn("hello?")
    completed = await finish(bus, turn)

    [apology] = await sent(bus, turn)
    assert apology.payload.text == agent.ctx.config.profile.apology
    assert completed.payload.outcome is TurnOutcome.FAILED
    [intervention] = await events(bus, names.CONV_CONTROL)
    assert isinstance(intervention, InterventionRequested)
    assert intervention.payload.mode is Mode.PENDING_HUMAN
    assert intervention.payload.reason is not None
    assert "could not answer" in intervention.payload.reason


async def test_crash_mid_graph_resumes_from_the_checkpoint(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    turn = make_turn("please send a sample")
    assert turn.conversation_id is not None
    config: RunnableConfig = {"configurable": {"thread_id": turn.conversation_id}}
    # The model asked for a tool, the checkpoint was written, then the process died.
    graph = agent.ctx.threads.graph
    await graph.ainvoke(start_state(turn.payload, AI_CONTROL), config, interrupt_before=["tools"])
    assert (await graph.aget_state(config)).next == ("tools",)

    completed = await finish(bus, turn)

    media, text = await sent(bus, turn)
    assert media.payload.kind is OutboundKind.IMAGE
    assert text.payload.text == "Done."
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert len(await gemini.requests()) == 2  # the first model call was not repeated


async def test_a_repeat_commits_under_the_control_its_first_run_had(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    # The turn ran in operator mode (only recorded), the process died before its commit,
    # and the conversation was handed back before the redelivery: the turn stays recorded
    # (as it would have without the crash), not "answered" with nothing sent.
    turn = make_turn("are you still there?")
    assert turn.conversation_id is not None
    first = await agent.ctx.threads.run_turn(
        turn.conversation_id, turn.payload, Control(Mode.OPERATOR, 1)
    )
    assert first.outputs == []
    await write_hash(bus, turn.conversation_id, Mode.AI, 2)

    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.RECORDED
    assert await sent(bus, turn) == []
    assert await logged(agent, turn.payload.turn_id) == ["recorded"]
    assert await gemini.requests() == []


async def test_a_repeated_handoff_after_a_takeover_keeps_its_epoch(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    # The turn handed off at epoch 0, the process died before its commit, and an operator
    # took over (epoch 1) before the redelivery. The notice keeps epoch 0 (so the sender
    # fences it: a person holds the conversation), and the handoff does not invent an epoch
    # the operator-api never gave out: the takeover's epoch stays, and its handback (2) is
    # newer than anything the agent stored.
    turn = make_turn("I want a human")
    assert turn.conversation_id is not None
    first = await agent.ctx.threads.run_turn(turn.conversation_id, turn.payload, AI_CONTROL)
    assert first.handoff
    calls = len(await gemini.requests())
    await write_hash(bus, turn.conversation_id, Mode.OPERATOR, 1)

    completed = await finish(bus, turn)

    assert completed.payload.outcome is TurnOutcome.HANDED_OFF
    [notice] = await sent(bus, turn)
    assert notice.payload.author is Author.SYSTEM
    assert notice.payload.control_epoch == 0
    [intervention] = [
        e
        for e in await events(bus, names.CONV_CONTROL)
        if isinstance(e, InterventionRequested) and e.payload.wa_id == turn.payload.wa_id
    ]
    assert intervention.payload.epoch == 1  # not newer than the takeover: the api ignores it
    assert await stored_epoch(agent, turn.conversation_id) == 1
    assert len(await gemini.requests()) == calls  # the repeat made no model call
