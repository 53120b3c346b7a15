"""Buffer test harness: replicas with a controllable clock on the test's database and prefix."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from redis.exceptions import ResponseError
from sqlalchemy import select, text

from baton_buffer.context import BufferContext
from baton_buffer.db.models import messages, turns
from baton_buffer.handlers import message_received, turn_completed
from baton_buffer.rules import Rules
from baton_buffer.ticker import Ticker
from baton_buffer.timers import Timers
from baton_shared.db import Database
from baton_shared.events import (
    InboundMessage,
    MessageReceived,
    MessageType,
    TurnCompleted,
    TurnOutcome,
    TurnReady,
    TurnResult,
    conversation_id_for,
    parse_event,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.streams.consumer import Delivery

BASE = 1_900_000_000.0  # a fixed "now" for the fake clock
AGENT = "agent-test"  # the consumer name of the agent `agents_caught_up` plays
DELIVERY = Delivery("test", "0-1", 1)


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = BASE) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def at(self, seconds: float) -> None:
        """Set the clock to BASE + seconds."""
        self.now = BASE + seconds


@dataclass
class Replica:
    """One buffer replica: its context, ticker and handlers, and probes of its tables."""

    ctx: BufferContext
    ticker: Ticker
    on_message: Callable[[MessageReceived], Awaitable[None]]
    on_completed: Callable[[TurnCompleted], Awaitable[None]]

    async def released(self, conv: Conversation) -> list[TurnReady]:
        """The `TurnReady` events released for `conv`, in turn order: those published on
        `conv.turns` and those still staged in the outbox (no relay runs here)."""
        bus = self.ctx.timers.bus
        events = [
            parse_event(f["event_type"], int(f["schema_version"]), f["body"])
            for _, f in await bus.redis.xrange(bus.key(names.CONV_TURNS))
            if f.get("conversation_id") == conv.id
        ]
        async with self.ctx.db.sessions() as session:
            rows = await session.execute(
                text(
                    "SELECT event_type, schema_version, body FROM buffer.outbox "
                    "WHERE conversation_id = :c ORDER BY id"
                ),
                {"c": conv.id},
            )
            events += [parse_event(r.event_type, r.schema_version, r.body) for r in rows]
        turns = {e.event_id: e for e in events if isinstance(e, TurnReady)}
        return sorted(turns.values(), key=lambda e: e.payload.sequence)

    async def texts(self, conv: Conversation) -> list[list[str | None]]:
        """The texts of each released turn of `conv`, in turn order."""
        return [[m.text for m in t.payload.messages] for t in await self.released(conv)]

    async def stored(self, conv: Conversation) -> int:
        """How many messages of `conv` the buffer recorded."""
        async with self.ctx.db.sessions() as session:
            rows = await session.execute(
                select(messages.c.message_id).where(messages.c.conversation_id == conv.id)
            )
            return len(rows.all())

    async def turn_rows(self, conv: Conversation) -> list[dict[str, object]]:
        """The `turns` rows of `conv`, by sequence."""
        async with self.ctx.db.sessions() as session:
            rows = await session.execute(
                select(turns).where(turns.c.conversation_id == conv.id).order_by(turns.c.sequence)
            )
            return [dict(r._mapping) for r in rows]


@dataclass
class Conversation:
    """One customer on one business number, with helpers to send and inspect."""

    phone_number_id: str
    wa_id: str

    @property
    def id(self) -> str:
        return conversation_id_for(self.phone_number_id, self.wa_id)

    def message(self, n: int | str, *, ts: float = 0.0, text: str | None = None) -> MessageReceived:
        """A `MessageReceived` for message `n`, WhatsApp timestamp BASE + ts."""
        payload = InboundMessage(
            message_id=f"wamid.{self.wa_id}.{n}",
            phone_number_id=self.phone_number_id,
            wa_id=self.wa_id,
            timestamp=datetime.fromtimestamp(BASE + ts, UTC),
            type=MessageType.TEXT,
            text=text or f"m{n}",
        )
        return MessageReceived.create(payload, producer="test", conversation_id=self.id)

    def completed(self, turn: TurnReady) -> TurnCompleted:
        """The agent's report that `turn` was answered."""
        result = TurnResult(
            turn_id=turn.payload.turn_id,
            phone_number_id=self.phone_number_id,
            wa_id=self.wa_id,
            outcome=TurnOutcome.ANSWERED,
            outputs=1,
        )
        return TurnCompleted.create(result, producer="agent", cause=turn)


def new_conversation() -> Conversation:
    """A conversation private to one test."""
    return Conversation(f"pn{uuid.uuid4().hex[:10]}", f"49{uuid.uuid4().int % 10**10:010d}")


@pytest.fixture
def conv() -> Conversation:
    """A conversation private to this test."""
    return new_conversation()


@pytest.fixture
def new_conv() -> Callable[[], Conversation]:
    """A factory of further private conversations."""
    return new_conversation


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make_replica(
    database_url: str, bus: Bus, clock: Clock
) -> AsyncIterator[Callable[..., Replica]]:
    """Build buffer replicas sharing this test's database, Redis prefix and clock."""
    databases: list[Database] = []

    def build(
        *,
        quiet: float = 4,
        max_seconds: float = 15,
        max_messages: int = 20,
        stuck: float = 120,
        lease: float = 30,
    ) -> Replica:
        db = Database(database_url, "buffer", pool_size=4)
        databases.append(db)
        rules = Rules(quiet, max_seconds, max_messages, stuck)
        ctx = BufferContext(
            db=db, timers=Timers(bus, lease_seconds=lease), rules=rules, clock=clock
        )
        on_message = message_received.make_handler(ctx)
        on_completed = turn_completed.make_handler(ctx)

        async def handle_message(event: MessageReceived) -> None:
            await on_message(event, DELIVERY)

        async def handle_completed(event: TurnCompleted) -> None:
            await on_completed(event, DELIVERY)

        return Replica(ctx, Ticker(ctx), handle_message, handle_completed)

    yield build
    for db in databases:
        await db.dispose()


async def agents_caught_up(bus: Bus) -> None:
    """Play a live agent replica that has been handed every turn released so far (its group's
    lag is 0): a turn over its time then counts as stuck (see `baton_buffer.agents`)."""
    key = bus.key(names.CONV_TURNS)
    with contextlib.suppress(ResponseError):  # BUSYGROUP: made by an earlier call
        await bus.redis.xgroup_create(key, names.GROUP_AGENT, id="0", mkstream=True)
    await bus.redis.xgroup_createconsumer(key, names.GROUP_AGENT, AGENT)
    await bus.redis.xreadgroup(names.GROUP_AGENT, AGENT, {key: ">"})
