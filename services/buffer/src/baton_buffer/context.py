"""What the buffer's handlers and ticker share: database, timers, rules and the clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from baton_buffer.rules import Rules
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
    """

    db: Database
    timers: Timers
    rules: Rules
    clock: Callable[[], float] = time.time

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
