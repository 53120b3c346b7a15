"""Whether the agents may still answer a turn in flight: the stuck-turn timeout's guard.

The stuck-turn timeout exists for a turn no agent will ever report done (its `TurnReady`
dead-lettered, say): after `BUFFER_STUCK_TURN_SECONDS` the conversation's next turn goes out.
It must not fire while the turn is merely waiting for an agent: with every agent down (a bad
release, a crash loop) for longer than the timeout, the next turn would be released behind
the first, and the agents, once back, would take both at once on two replicas (invariant 5).

So a turn counts as stuck only when the agents have caught up with `conv.turns` (their group
has been handed every entry: lag 0) and some agent replica is alive (its consumer read within
`active_seconds`). A turn handed to a replica that died is reclaimed by a live one within
1.5 x `RECLAIM_IDLE_MS` + `AGENT_TURN_TIMEOUT_SECONDS`, which the timeout exceeds.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import ResponseError

from baton_shared.streams import names
from baton_shared.streams.bus import Bus, undelivered

log = logging.getLogger(__name__)

ACTIVE_SECONDS = 60.0  # an agent replica reads at least every CONSUMER_BLOCK_MS while idle


class AgentWatch:
    """Reads the agents' progress on `conv.turns` from their consumer group."""

    def __init__(self, bus: Bus, *, active_seconds: float = ACTIVE_SECONDS) -> None:
        self.bus = bus
        self.active_ms = active_seconds * 1000

    async def behind(self) -> str | None:
        """Why a turn in flight may still be answered (the agents are behind or down), or
        None when they have caught up and one of them is alive."""
        key = self.bus.key(names.CONV_TURNS)
        try:
            groups: list[dict[str, Any]] = await self.bus.redis.xinfo_groups(key)
        except ResponseError:  # no stream yet: nothing was published for an agent
            return "no turn published yet"
        group = next((g for g in groups if g["name"] == names.GROUP_AGENT), None)
        if group is None:
            return "no agent has started"
        if await self._lag(key, group) != 0:
            return "the agents are behind"
        consumers = await self.bus.redis.xinfo_consumers(key, names.GROUP_AGENT)
        if not any(int(c["idle"]) < self.active_ms for c in consumers):
            return "no agent is running"
        return None

    async def _lag(self, key: str, group: dict[str, Any]) -> int | None:
        """Entries of `conv.turns` not yet handed to the group: XINFO's `lag` (Redis 7); where
        Redis does not give it (6.2, as `make run`'s embedded Redis; or 7 after deletions in
        the stream), whether any entry follows the group's last delivered one.
        Without this fallback the agents always counted as behind on Redis 6.2, and a turn
        they would never report done held its conversation for good."""
        lag = group.get("lag")
        if lag is not None:
            return int(lag)
        return await undelivered(self.bus.redis, key, group.get("last-delivered-id"), cap=1)
