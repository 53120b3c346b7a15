"""What the buffer's handlers and ticker share: database, timers, rules and the clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from baton_buffer.db import repo
from baton_buffer.rules import Rules, next_check
from baton_buffer.settings import BufferSettings
from baton_buffer.timers import Timers
from baton_shared.db import Database

PRODUCER = "buffer"


@dataclass
class BufferContext:
    """The buffer's shared state in one process.

    Attributes:
        db: the buffer schema.
        timers: deadlines and claims in Redis.
        rules: the closing rules.
        clock: wall-clock time in epoch seconds (replaceable in tests).
        wake: set when a conversation became due now, so the ticker does not wait a tick.
    """

    db: Database
    timers: Timers
    rules: Rules
    clock: Callable[[], float] = time.time
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def from_settings(cls, db: Database, timers: Timers, settings: BufferSettings) -> BufferContext:
        """A context with the rules of `settings` and the real clock."""
        rules = Rules(
            quiet_seconds=settings.quiet_seconds,
            max_seconds=settings.max_seconds,
            max_messages=settings.max_messages,
            stuck_turn_seconds=settings.stuck_turn_seconds,
        )
        return cls(db=db, timers=timers, rules=rules)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction (committed on success, rolled back on error) whose commit, unlike
        `Database.session`'s, does not wake the outbox relay: for transactions that stage no
        event (waking the relay for each cost it a useless round of queries). One that does
        stage events sets `db.changed` after it."""
        async with self.db.sessions() as session, session.begin():
            yield session

    async def reschedule(self, conversation_id: str) -> None:
        """Set the conversation's timer from what PostgreSQL holds now (see `reschedule_many`)."""
        await self.reschedule_many([conversation_id])

    async def reschedule_many(self, conversation_ids: Sequence[str]) -> None:
        """Set these conversations' timers from what PostgreSQL holds now, in one query and
        one Redis round trip.

        Called after the caller's commit, so the last writer of a conversation always sees
        every earlier commit; earlier writers can only leave an earlier (harmless) deadline.
        """
        if not conversation_ids:
            return
        async with self.db.sessions() as session:
            states = await repo.schedule_states(session, conversation_ids)
        deadlines: dict[str, float] = {}
        for conversation_id, state in states.items():
            at = next_check(self.rules, state.in_flight_since, state.arrivals)
            if at is not None:
                deadlines[conversation_id] = at
        await self.timers.schedule_many(deadlines)
        if deadlines and min(deadlines.values()) <= self.clock():
            self.wake.set()
