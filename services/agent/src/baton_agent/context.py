"""What the handlers share: settings, configuration, database, and the conversation threads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from baton_agent.config import AgentConfig
from baton_agent.runner import Threads
from baton_agent.settings import AgentSettings
from baton_shared.db import Database
from baton_shared.streams.bus import Bus

PRODUCER = "agent"


@dataclass
class AgentContext:
    """The agent's dependencies; `threads` is set at start (the checkpointer needs a loop).

    Attributes:
        settings: the service settings.
        config: prompt, business profile and media catalogue.
        db: the agent schema.
        bus: the event bus; its Redis also holds the fencing hashes (`control:<id>`).
        threads: the graph over the checkpointer, once started.
    """

    settings: AgentSettings
    config: AgentConfig
    db: Database
    bus: Bus
    _threads: Threads | None = field(default=None, repr=False)
    _sessions: asyncio.Semaphore = field(init=False, repr=False)
    _autocommit: AsyncEngine = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Queued at the pool's size (`DB_POOL_SIZE`), not at size + overflow: overflow
        # connections are closed when returned, so using them meant opening a PostgreSQL
        # connection (TLS attempt, auth) every few turns.
        self._sessions = asyncio.Semaphore(self.db.pool_size)
        # Same pool; its connections run each statement on its own, with no BEGIN / COMMIT.
        self._autocommit = self.db.engine.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """`db.session()`, queued here rather than in the pool.

        Hundreds of concurrent turns would otherwise wait on the pool's 30 s checkout
        timeout, and on a saturated event loop some fail with TimeoutError (and retry).
        """
        async with self._sessions, self.db.session() as session:
            yield session

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one-statement reads, outside any transaction, queued as `session`.

        A read in a session costs two more round trips (BEGIN, COMMIT) and the ORM's layer.
        """
        async with self._sessions, self._autocommit.connect() as conn:
            yield conn

    @property
    def threads(self) -> Threads:
        """The conversation threads; fails clearly when used before start."""
        if self._threads is None:
            raise RuntimeError("the agent's graph is not started yet")
        return self._threads

    @threads.setter
    def threads(self, value: Threads) -> None:
        self._threads = value
