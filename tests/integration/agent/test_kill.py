"""Invariant 3 with a real crash: `baton-agent serve` is SIGKILLed mid-turn and restarted.

Three moments, in one chain of processes: while the model call is in flight, after the model answered but before the
turn's commit (its INSERT held by a table lock), and just after the answer was published.
Each time the replacement process (another consumer name, short RECLAIM_IDLE_MS) reclaims
the turn and the customer gets exactly one answer, with the command ids of (turn, position).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from baton_buffer.main import create_app as create_buffer
from baton_buffer.settings import BufferSettings
from baton_shared.db.engine import async_url
from baton_shared.events import (
    InboundMessage,
    MessageReceived,
    MessageType,
    TurnCompleted,
    TurnOutcome,
    TurnReady,
    command_id_for,
    parse_event,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, position
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, Gemini, events, make_turn
from .test_turns import sent

pytestmark = pytest.mark.integration

AGENT = Path(sys.executable).parent / "baton-agent"


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AgentProcesses:
    """Starts `baton-agent serve` processes for one test; kills any left at the end."""

    env: dict[str, str]
    logs: Path
    started: list[asyncio.subprocess.Process]

    async def start(self) -> asyncio.subprocess.Process:
        """A new agent process, once it reports ready."""
        port = free_port()
        log = self.logs / f"agent-{len(self.started)}.log"
        with log.open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                str(AGENT),
                "serve",
                env={**os.environ, **self.env, "AGENT_PORT": str(port)},
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
            )
        self.started.append(proc)

        async def ready() -> bool:
            assert proc.returncode is None, f"agent exited:\n{log.read_text()[-3000:]}"
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(timeout=2) as client:
                    reply = await client.get(f"http://127.0.0.1:{port}/health/ready")
                    return reply.status_code == 200
            return False

        await wait_until(ready, timeout=60, interval=0.1, what="agent ready")
        return proc

    async def kill(self, proc: asyncio.subprocess.Process) -> None:
        """SIGKILL: no shutdown, no ack, no outbox flush."""
        proc.send_signal(signal.SIGKILL)
        await proc.wait()


@pytest.fixture
async def processes(
    database_url: str, redis_url: str, prefix: str, gemini_url: str, tmp_path: Path
) -> AsyncIterator[AgentProcesses]:
    """Agent processes on this test's database and prefix, the model the emulator."""
    env = {
        "BATON_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "GEMINI_BASE_URL": gemini_url,
        "GOOGLE_API_KEY": "test-key",
        "GEMINI_RETRY_BACKOFF_SECONDS": "0.01",
        "CONSUMER_BLOCK_MS": "100",
        # Short, so the replacement takes the dead process's turn over quickly; longer than
        # the few milliseconds a turn lasts here, so a live turn is never taken twice.
        "RECLAIM_IDLE_MS": "1500",
        "AGENT_TURN_TIMEOUT_SECONDS": "1",  # which RECLAIM_IDLE_MS must exceed
        "LOG_LEVEL": "INFO",
    }
    procs = AgentProcesses(env, tmp_path, [])
    try:
        yield procs
    finally:
        for proc in procs.started:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), timeout=15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def assert_one_answer(bus: Bus, turn: TurnReady) -> None:
    """Wait for the turn's completion; exactly one command per position, with stable ids."""
    completed = await finish_published(bus, turn)
    assert completed.payload.outcome is TurnOutcome.ANSWERED
    [answer] = await sent(bus, turn)
    assert answer.payload.command_id == command_id_for(str(turn.payload.turn_id), 0)
    assert answer.payload.text == f"You said: {turn.payload.messages[0].text}"

    async def all_acked() -> bool:  # the redelivered entry is acknowledged, nothing left
        pending: Any = await bus.redis.xpending(bus.key(names.CONV_TURNS), names.GROUP_AGENT)
        return int(pending["pending"]) == 0

    await until(all_acked, "every turn acknowledged")


async def finish_published(bus: Bus, turn: TurnReady) -> TurnCompleted:
    """Wait for the agent to report the (already published) turn done."""

    async def done() -> list[TurnCompleted]:
        return [
            e
            for e in await events(bus, names.CONV_TURNS_DONE)
            if isinstance(e, TurnCompleted) and e.payload.turn_id == turn.payload.turn_id
        ]

    [completed] = await wait_until(done, timeout=60, what="TurnCompleted")
    return completed


async def until(probe: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Wait (30 s at most) for `probe` to return something truthy."""
    return await wait_until(probe, timeout=30, interval=0.02, what=what)


async def killed_during_the_model_call(
    processes: AgentProcesses, running: asyncio.subprocess.Process, bus: Bus, gemini: Gemini
) -> asyncio.subprocess.Process:
    """Kill while the model call is in flight; returns the replacement process."""
    await gemini.fault(delay_ms=60_000, count=1)  # this call never answers in time
    turn = make_turn("are you open on Sunday?")
    await bus.publish(turn)
    await until(gemini.requests, "the model call in flight")

    await processes.kill(running)
    replacement = await processes.start()

    await assert_one_answer(bus, turn)
    assert len(await gemini.requests()) == 2  # the interrupted call, then the re-run
    return replacement


async def killed_between_model_call_and_commit(
    processes: AgentProcesses,
    running: asyncio.subprocess.Process,
    bus: Bus,
    gemini: Gemini,
    database_url: str,
) -> asyncio.subprocess.Process:
    """Kill after the model answered, before the turn's commit; returns the replacement."""
    turn = make_turn("do you deliver?")
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as blocker:
            # Reads of the turn log go through; the turn's INSERT waits: the model has
            # answered and the checkpoint holds the outputs, but nothing is committed.
            await blocker.execute(text("LOCK TABLE agent.turns IN EXCLUSIVE MODE"))
            await bus.publish(turn)
            await until(gemini.requests, "the model call")

            async def commit_waiting() -> bool:
                async with engine.connect() as probe:
                    waiting = await probe.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND wait_event_type = 'Lock' "
                            "AND query ILIKE '%INSERT INTO agent.turns%'"
                        )
                    )
                return bool(waiting)

            await until(commit_waiting, "the turn's commit blocked")
            await processes.kill(running)
            await blocker.rollback()  # the lock goes; the dead process's INSERT rolls back
    finally:
        await engine.dispose()
    assert await sent(bus, turn) == []

    replacement = await processes.start()

    await assert_one_answer(bus, turn)
    assert len(await gemini.requests()) == 1  # the checkpoint's answer was reused
    return replacement


async def killed_after_publishing(
    processes: AgentProcesses, running: asyncio.subprocess.Process, bus: Bus, gemini: Gemini
) -> None:
    """Kill as soon as the answer is on wa.outbound (before or after the ack)."""
    turn = make_turn("thanks, bye")
    await bus.publish(turn)
    await until(lambda: sent(bus, turn), "the answer published")

    await processes.kill(running)  # maybe before the ack, the TurnCompleted, or the outbox mark
    await processes.start()

    await assert_one_answer(bus, turn)
    assert len(await gemini.requests()) == 1


@pytest.mark.timeout(600)  # four process starts; each imports LangChain (slow on a busy box)
async def test_sigkilled_agent_answers_each_turn_exactly_once(
    processes: AgentProcesses, bus: Bus, gemini: Gemini, database_url: str
) -> None:
    # One chain of processes (each replacement is the next victim): starting the agent
    # costs seconds, so three separate tests would start six.
    running = await processes.start()
    running = await killed_during_the_model_call(processes, running, bus, gemini)
    await gemini.reset()
    running = await killed_between_model_call_and_commit(
        processes, running, bus, gemini, database_url
    )
    await gemini.reset()
    await killed_after_publishing(processes, running, bus, gemini)


@pytest.mark.timeout(600)
async def test_a_killed_agents_turn_holds_the_conversations_next_turn_back_until_redone(
    processes: AgentProcesses,
    bus: Bus,
    gemini: Gemini,
    database_url: str,
    redis_url: str,
    prefix: str,
) -> None:
    # Invariant 5 across a crash, with the real buffer releasing the turns: an agent dies
    # holding turn 1 while the customer writes again. The buffer must not release turn 2
    # until turn 1 is done, and turn 1 must be redone (by the live replica) exactly once.
    # The settings keep the production rule, scaled down: the stuck-turn timeout (15 s)
    # exceeds 1.5 x the agent's RECLAIM_IDLE_MS (6 s: the idle time, plus up to half of it
    # until the next reclaim scan) + AGENT_TURN_TIMEOUT_SECONDS (5 s) for the redo.
    settings = BufferSettings(
        baton_env="test",
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=prefix,
        **{"BUFFER_QUIET_SECONDS": 0, "BUFFER_STUCK_TURN_SECONDS": 15, "BUFFER_TICK_MS": 20},
    )
    buffer = create_buffer(settings)
    # Time enough to find and kill the replica holding the turn before its model call's
    # deadline; the idle time before the other replica takes the turn over must exceed it.
    processes.env |= {"AGENT_TURN_TIMEOUT_SECONDS": "5", "RECLAIM_IDLE_MS": "6000"}
    async with buffer.router.lifespan_context(buffer):
        replicas = {proc.pid: proc for proc in [await processes.start(), await processes.start()]}
        await gemini.fault(delay_ms=60_000, count=1)  # turn 1's first model call hangs
        customer = f"34{uuid.uuid4().int % 10**10:010d}"
        await bus.publish(inbound(customer, "is my order shipped?"))
        await until(gemini.requests, "turn 1's model call in flight")
        holder = replicas.pop(await _holder_pid(bus))
        await processes.kill(holder)
        await bus.publish(inbound(customer, "the one from Monday"))

        turns = await wait_until(
            lambda: _answered_turns(bus, customer, 2), timeout=90, what="both turns answered"
        )
        first, second = turns
        assert [m.text for m in first.payload.messages] == ["is my order shipped?"]
        assert [m.text for m in second.payload.messages] == ["the one from Monday"]
        # Released only once turn 1 was reported done (after its redo), never before.
        done = {
            e.payload.turn_id: entry_id
            for entry_id, e in await _entries(bus, names.CONV_TURNS_DONE)
            if isinstance(e, TurnCompleted)
        }
        ready = {
            e.payload.turn_id: entry_id
            for entry_id, e in await _entries(bus, names.CONV_TURNS)
            if isinstance(e, TurnReady)
        }
        turn_1, turn_2 = first.payload.turn_id, second.payload.turn_id
        assert position(done[turn_1]) < position(ready[turn_2])
        for turn in turns:  # one answer each, the redone turn included
            assert len(await sent(bus, turn)) == 1
        # The interrupted call, turn 1's redo, turn 2.
        assert len(await gemini.requests()) == 3
        [survivor] = replicas.values()
        assert survivor.returncode is None


async def _holder_pid(bus: Bus) -> int:
    """The pid of the agent process holding the one turn in flight (consumer names end in
    the pid)."""
    [entry] = await bus.redis.xpending_range(
        bus.key(names.CONV_TURNS), names.GROUP_AGENT, "-", "+", 10
    )
    return int(str(entry["consumer"]).rsplit("-", 1)[1])


def inbound(customer: str, text_: str) -> MessageReceived:
    message = InboundMessage(
        message_id=f"wamid.{uuid.uuid4().hex}",
        phone_number_id=PHONE_NUMBER_ID,
        wa_id=customer,
        timestamp=datetime.now(UTC),
        type=MessageType.TEXT,
        text=text_,
    )
    return MessageReceived.create(message, producer="test")


async def _entries(bus: Bus, stream: str) -> list[tuple[str, Any]]:
    return [
        (str(entry_id), parse_event(f["event_type"], int(f["schema_version"]), f["body"]))
        for entry_id, f in await bus.redis.xrange(bus.key(stream))
    ]


async def _answered_turns(bus: Bus, customer: str, n: int) -> list[TurnReady] | None:
    """The customer's turns in release order, once `n` of them have one answer each."""
    turns = [
        e
        for _, e in await _entries(bus, names.CONV_TURNS)
        if isinstance(e, TurnReady) and e.payload.wa_id == customer
    ]
    if len(turns) < n:
        return None
    for turn in turns:
        if not await sent(bus, turn):
            return None
    return turns
