"""What the handlers share: settings, configuration, database, and the conversation threads."""

from __future__ import annotations

from dataclasses import dataclass, field

from baton_agent.config import AgentConfig
from baton_agent.runner import Threads
from baton_agent.settings import AgentSettings
from baton_shared.db import Database

PRODUCER = "agent"


@dataclass
class AgentContext:
    """The agent's dependencies; `threads` is set at start (the checkpointer needs a loop).

    Attributes:
        settings: the service settings.
        config: prompt, business profile and media catalogue.
        db: the agent schema.
        threads: the graph over the checkpointer, once started.
    """

    settings: AgentSettings
    config: AgentConfig
    db: Database
    _threads: Threads | None = field(default=None, repr=False)

    @property
    def threads(self) -> Threads:
        """The conversation threads; fails clearly when used before start."""
        if self._threads is None:
            raise RuntimeError("the agent's graph is not started yet")
        return self._threads

    @threads.setter
    def threads(self, value: Threads) -> None:
        self._threads = value
