"""Running one turn through a conversation's graph, safe to repeat after a crash.

The checkpoint remembers the turn: a repeat of a turn whose graph run finished reuses its
outputs (no second model call, same answer). A turn's run writes one checkpoint, when the
graph ends (durability "exit"): a run that dies mid-graph leaves the previous turn's
checkpoint, and its repeat runs the turn again from the start (a second model call; nothing
was sent, since outputs leave only with the turn's commit, and the command ids depend on the
turn alone). A checkpoint left mid-graph (an interrupted run) is resumed from.

A turn is the thread's only writer (the buffer releases one turn of a conversation at a
time): what operators sent since the last turn is carried into the thread by the next one,
before the customer's messages (`start_state`), instead of being written into the thread as
it is sent, which another replica running a turn of the same conversation would fork.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph.state import CompiledStateGraph

from baton_agent.db.repo import Control
from baton_agent.graph.state import AgentState, Output
from baton_agent.transcript import operator_message, turn_message
from baton_shared.events import Mode, Turn

# One checkpoint write per run, at its end, rather than one per step: the checkpoint must
# hold a finished turn's outputs (a repeat re-reads them), and intermediate steps are cheap
# to redo because nothing leaves before the turn's commit.
DURABILITY: Literal["exit"] = "exit"

_LAST_TURN_SQL = (
    "SELECT checkpoint->'channel_values'->>'turn_id' AS turn_id FROM checkpoints "
    "WHERE thread_id = %s AND checkpoint_ns = '' ORDER BY checkpoint_id DESC LIMIT 1"
)

_GRAPH_MODES: dict[Mode, Literal["ai", "operator", "pending_human"]] = {
    Mode.AI: "ai",
    Mode.PENDING_HUMAN: "pending_human",
}


@dataclass(frozen=True, slots=True)
class TurnRun:
    """What the graph decided for a turn.

    Attributes:
        outputs: messages to send, in order.
        handoff: why the conversation goes to a person, if it does.
        failed: the model could not answer (the outputs hold the apology).
        control: the control the graph ran under: the caller's, or for a repeat the one of
            the run that the checkpoint holds.
        carried: keys of the operator messages this run carried into the thread (none for a
            repeat: its thread has what its first run carried; the rest waits for the next
            turn).
    """

    outputs: list[Output]
    handoff: str | None
    failed: bool
    control: Control
    carried: list[str]


def start_state(
    turn: Turn,
    control: Control,
    *,
    limited: bool = False,
    operator_messages: Sequence[tuple[str, str]] = (),
    back_from_a_person: bool = False,
) -> AgentState:
    """The graph's input for a new turn: what operators sent since the last turn ((key,
    text) pairs), its messages, the control it runs under, empty per-turn fields; `limited`:
    the conversation has had its AI answers for the hour (see `Nodes.hand_off`);
    `back_from_a_person`: a person had it since the last turn (`transcript.turn_message`)."""
    carried = [operator_message(key, text) for key, text in operator_messages]
    message = turn_message(str(turn.turn_id), turn.messages, back_from_a_person=back_from_a_person)
    return {
        "messages": [*carried, message],
        "turn_id": str(turn.turn_id),
        "phone_number_id": turn.phone_number_id,
        # Any mode but ai (unknown included) keeps the AI silent.
        "mode": _GRAPH_MODES.get(control.mode, "operator"),
        "control": {"mode": control.mode.value, "epoch": control.epoch},
        "outputs": [],
        "handoff": None,
        "failed": False,
        "model_calls": 0,
        "started_at": time.time(),
        "limited": limited,
    }


def _control_of(values: dict[str, Any], default: Control) -> Control:
    """The control a checkpointed run ran under (`default` for a checkpoint without it)."""
    stored = values.get("control")
    if not isinstance(stored, dict):
        return default
    try:
        return Control(Mode(stored["mode"]), int(stored["epoch"]))
    except (KeyError, TypeError, ValueError):
        return default


class Threads:
    """The conversation graph with one thread per conversation, one writer at a time."""

    def __init__(self, graph: CompiledStateGraph[Any, Any, Any, Any]) -> None:
        self.graph = graph
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def exclusive(self, conversation_id: str) -> AsyncIterator[RunnableConfig]:
        """Hold the conversation's thread (its config inside): one writer at a time."""
        # Turns of one conversation never overlap (the buffer's rule); operator messages may
        # arrive meanwhile, and two writers on one thread would fork it.
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = self._locks[conversation_id] = asyncio.Lock()
        async with lock:
            yield {"configurable": {"thread_id": conversation_id}}

    async def _checkpointed_turn_id(self, config: RunnableConfig) -> str | None:
        """The turn id in the thread's latest checkpoint, without loading its messages."""
        saver = self.graph.checkpointer
        if not isinstance(saver, AsyncPostgresSaver):
            snapshot = await self.graph.aget_state(config)
            return (snapshot.values or {}).get("turn_id")
        async with saver._cursor() as cur:
            await cur.execute(_LAST_TURN_SQL, (config["configurable"]["thread_id"],))
            row = await cur.fetchone()
        return None if row is None else row["turn_id"]

    async def checkpointed_control(self, thread: RunnableConfig, default: Control) -> Control:
        """The control the thread's latest checkpointed run ran under (`default` if none)."""
        snapshot = await self.graph.aget_state(thread)
        return _control_of(snapshot.values or {}, default)

    async def run_turn(
        self, conversation_id: str, turn: Turn, control: Control, *, limited: bool = False
    ) -> TurnRun:
        """Run (or finish, or re-read) the graph for `turn`."""
        async with self.exclusive(conversation_id) as thread:
            checkpointed = await self._checkpointed_turn_id(thread)
            return await self.run_held(thread, turn, control, checkpointed, limited=limited)

    async def run_held(
        self,
        thread: RunnableConfig,
        turn: Turn,
        control: Control,
        checkpointed_turn_id: str | None,
        *,
        limited: bool = False,
        operator_messages: Sequence[tuple[str, str]] = (),
        back_from_a_person: bool = False,
    ) -> TurnRun:
        """`run_turn` for a caller that holds the thread (`exclusive`) and has read the turn id
        of its latest checkpoint while holding it (with its own queries, in one round trip).

        A repeat returns what the first run decided and the control it ran under: its outputs
        were decided for that mode and carry that epoch (the sender fences them if the
        conversation changed hands since), and a turn first only recorded stays recorded."""
        turn_id = str(turn.turn_id)
        carried: list[str] = []
        if checkpointed_turn_id == turn_id:  # a repeat: rare
            snapshot = await self.graph.aget_state(thread)
            values: dict[str, Any] = snapshot.values or {}
            if snapshot.next:  # interrupted mid-run: continue from that checkpoint
                values = await self.graph.ainvoke(None, thread, durability=DURABILITY)
            control = _control_of(values, control)
        else:
            start = start_state(
                turn,
                control,
                limited=limited,
                operator_messages=operator_messages,
                back_from_a_person=back_from_a_person,
            )
            values = await self.graph.ainvoke(start, thread, durability=DURABILITY)
            carried = [key for key, _ in operator_messages]
        return TurnRun(
            outputs=list(values.get("outputs", [])),
            handoff=values.get("handoff"),
            failed=bool(values.get("failed")),
            control=control,
            carried=carried,
        )
