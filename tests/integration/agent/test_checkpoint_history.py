"""A conversation's superseded checkpoints are deleted once old
(`AGENT_CHECKPOINT_HISTORY_HOURS`); its latest stays, and with it everything it remembers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from baton_agent.checkpointer import libpq_url
from baton_agent.retention import CheckpointHistory
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import Gemini, RunningAgent, make_turn
from .test_turns import finish

pytestmark = pytest.mark.integration


async def checkpoints(agent: RunningAgent, conversation_id: str) -> int:
    pool = agent.ctx.threads.graph.checkpointer.conn  # type: ignore[union-attr]
    async with pool.connection() as conn:
        rows = await conn.execute(
            "SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", (conversation_id,)
        )
        return int((await rows.fetchone())["n"])


async def age(agent: RunningAgent, conversation_id: str, hours: float) -> None:
    """Make every checkpoint of the conversation `hours` older."""
    pool = agent.ctx.threads.graph.checkpointer.conn  # type: ignore[union-attr]
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE checkpoints SET checkpoint = jsonb_set(checkpoint, '{ts}', to_jsonb("
            "((checkpoint->>'ts')::timestamptz - %s)::text)) WHERE thread_id = %s",
            (timedelta(hours=hours), conversation_id),
        )


def history(agent: RunningAgent) -> CheckpointHistory:
    saver: Any = agent.ctx.threads.graph.checkpointer
    return CheckpointHistory(saver.conn, saver, keep=timedelta(hours=24), batch=1)


async def test_old_history_goes_and_the_conversation_remembers(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    wa_id = f"34{uuid.uuid4().int % 10**10:010d}"
    first = make_turn("my order number is 5521", wa_id=wa_id)
    conversation_id = first.conversation_id
    assert conversation_id is not None
    await finish(bus, first)
    await finish(bus, make_turn("it is late", wa_id=wa_id))
    before = await checkpoints(agent, conversation_id)
    assert before >= 2  # one per turn at least

    # (Other tests' conversations share the database: count this one's checkpoints.)
    await history(agent).prune()
    assert await checkpoints(agent, conversation_id) == before  # all of it recent: kept

    await age(agent, conversation_id, hours=25)
    assert await history(agent).prune() >= 1
    assert await checkpoints(agent, conversation_id) == 1

    await gemini.reset()
    await finish(bus, make_turn("any news?", wa_id=wa_id))
    [request] = await gemini.requests()
    assert "5521" in str(request["body"]["contents"])  # the thread still remembers


async def test_a_thread_written_while_it_is_pruned_is_left_for_the_next_round(
    agent: RunningAgent, bus: Bus, database_url: str
) -> None:
    wa_id = f"34{uuid.uuid4().int % 10**10:010d}"
    first = make_turn("hello", wa_id=wa_id)
    conversation_id = first.conversation_id
    assert conversation_id is not None
    await finish(bus, first)
    await finish(bus, make_turn("still there?", wa_id=wa_id))
    before = await checkpoints(agent, conversation_id)
    await age(agent, conversation_id, hours=25)

    # Another writer (a turn of this conversation, say) changes the thread's rows while the
    # prune runs: it holds them until the prune is waiting on it, then commits.
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as writer:
        await writer.execute(
            "UPDATE agent.checkpoints SET metadata = metadata WHERE thread_id = %s",
            (conversation_id,),
        )
        prune = asyncio.create_task(history(agent).prune())

        async def prune_waits() -> bool:
            """Someone waits for the writer's transaction (its row locks): the prune."""
            async with await psycopg.AsyncConnection.connect(
                libpq_url(database_url), autocommit=True
            ) as probe:
                rows = await probe.execute(
                    "SELECT count(*) FROM pg_locks w JOIN pg_locks h ON h.granted "
                    "AND h.locktype = 'transactionid' AND h.transactionid = w.transactionid "
                    "WHERE NOT w.granted AND h.pid = %s",
                    (writer.info.backend_pid,),
                )
                row = await rows.fetchone()
            return bool(row and row[0])

        await wait_until(prune_waits, what="the prune waiting on the writer's rows")
        await writer.commit()
        await asyncio.wait_for(prune, timeout=10)

    assert await checkpoints(agent, conversation_id) == before  # left alone, not half-pruned
    assert await history(agent).prune() >= 1  # the next round prunes it
    assert await checkpoints(agent, conversation_id) == 1


async def test_a_thread_the_library_cannot_prune_does_not_stop_the_others(
    agent: RunningAgent, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversations = []
    for _ in range(2):
        wa_id = f"34{uuid.uuid4().int % 10**10:010d}"
        await finish(bus, make_turn("one", wa_id=wa_id))
        turn = make_turn("two", wa_id=wa_id)
        await finish(bus, turn)
        assert turn.conversation_id is not None
        await age(agent, turn.conversation_id, hours=25)
        conversations.append(turn.conversation_id)
    refused, other = conversations
    saver: Any = agent.ctx.threads.graph.checkpointer
    real_aprune = saver.aprune

    async def aprune(thread_ids: list[str], *, strategy: str) -> None:
        if refused in thread_ids:  # as the library does for a thread with a DeltaChannel
            raise NotImplementedError("keep_latest does not support DeltaChannel threads")
        await real_aprune(thread_ids, strategy=strategy)

    monkeypatch.setattr(saver, "aprune", aprune)
    await history(agent).prune()

    assert await checkpoints(agent, other) == 1
    assert await checkpoints(agent, refused) >= 2
