"""What the buffer's handlers and ticker share: database, timers, rules and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from baton_buffer.agents import AgentWatch
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
        clock: wall-clock time in epoch seconds: Redis's (`clock.RedisClock`), one clock for
            every replica; replaceable in tests.
        agents: whether the agents are behind, which keeps a turn from counting as stuck.
    """

    db: Database
    timers: Timers
    rules: Rules
    clock: Callable[[], float] = time.time
    agents: AgentWatch = field(init=False)

    def __post_init__(self) -> None:
        self.agents = AgentWatch(self.timers.bus)  # on the timers' Redis: the same bus

    @classmethod
    def from_settings(
        cls,
        db: Database,
        timers: Timers,
        settings: BufferSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> BufferContext:
        """A context with the rules of `settings`."""
        rules = Rules(
            quiet_seconds=settings.quiet_seconds,
            max_seconds=settings.max_seconds,
            max_messages=settings.max_messages,
            stuck_turn_seconds=settings.stuck_turn_seconds,
        )
        return cls(db=db, timers=timers, rules=rules, clock=clock)
