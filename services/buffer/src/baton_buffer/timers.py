"""The buffer's live state in Redis: a sorted set of deadlines and atomic claims in Lua.

A deadline only says "look at this conversation at this time": looking early is harmless
(PostgreSQL decides whether a turn is due), so deadlines are only ever moved earlier
(`ZADD LT`) by whoever changed a conversation. A claim moves a due conversation from the
deadlines to the claims set with a lease, in one script, so two replicas never work on the
same conversation at once; a replica that dies holding a claim loses it when the lease lapses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from baton_buffer import keys
from baton_shared.streams.bus import Bus

# KEYS: deadlines, claims. ARGV: now_ms, lease_ms, limit.
# Returns a flat list: conversation id, lease (ms), conversation id, lease, ...
_CLAIM = """
local now = tonumber(ARGV[1])
local lease = now + tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local out = {}
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, conv in ipairs(lapsed) do
  redis.call('ZADD', KEYS[2], lease, conv)
  out[#out + 1] = conv
  out[#out + 1] = lease
end
local offset = 0
while #out < 2 * limit do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', offset, limit)
  if #due == 0 then break end
  for _, conv in ipairs(due) do
    if #out >= 2 * limit then break end
    if redis.call('ZSCORE', KEYS[2], conv) then
      -- held by a replica right now: stays due, is looked at again after that replica
      offset = offset + 1
    else
      redis.call('ZREM', KEYS[1], conv)
      redis.call('ZADD', KEYS[2], lease, conv)
      out[#out + 1] = conv
      out[#out + 1] = lease
    end
  end
end
return out
"""

# KEYS: deadlines, claims. ARGV: triples of conversation id, lease (ms) it was claimed with,
# next ms or ''.
_SETTLE = """
for i = 1, #ARGV, 3 do
  local conv, lease, next_ms = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if tonumber(redis.call('ZSCORE', KEYS[2], conv)) == tonumber(lease) then
    redis.call('ZREM', KEYS[2], conv)
  end
  if next_ms ~= '' then
    redis.call('ZADD', KEYS[1], 'LT', next_ms, conv)
  end
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """A conversation this replica may work on until its lease lapses.

    Attributes:
        conversation_id: the conversation.
        lease_ms: epoch ms when the claim lapses; also the token that releases it.
    """

    conversation_id: str
    lease_ms: int


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class Timers:
    """Deadlines and claims of every conversation, shared by all buffer replicas."""

    def __init__(self, bus: Bus, *, lease_seconds: float) -> None:
        self.bus = bus
        self.lease_ms = _ms(lease_seconds)
        self._deadlines = bus.key(keys.deadlines())
        self._claims = bus.key(keys.claims())
        self._claim = bus.redis.register_script(_CLAIM)
        self._settle = bus.redis.register_script(_SETTLE)

    async def schedule(self, conversation_id: str, at: float) -> None:
        """Look at the conversation no later than `at` (never postpones an earlier deadline)."""
        await self.bus.redis.zadd(self._deadlines, {conversation_id: _ms(at)}, lt=True)

    async def schedule_many(self, deadlines: dict[str, float]) -> None:
        """`schedule` for many conversations in one round trip."""
        if deadlines:
            mapping = {conv: _ms(at) for conv, at in deadlines.items()}
            await self.bus.redis.zadd(self._deadlines, mapping, lt=True)

    async def claim_due(self, now: float, limit: int) -> list[Claim]:
        """Atomically claim up to `limit` conversations that are due or whose claim lapsed."""
        flat: list[Any] = await self._claim(
            keys=[self._deadlines, self._claims], args=[_ms(now), self.lease_ms, limit]
        )
        return [Claim(str(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def settle(self, claim: Claim, next_at: float | None) -> None:
        """Give the claim back and schedule the conversation's next look, if any."""
        await self.settle_many([(claim, next_at)])

    async def settle_many(self, settled: list[tuple[Claim, float | None]]) -> None:
        """`settle` for many claims in one round trip."""
        args: list[str | int] = []
        for claim, next_at in settled:
            args += [claim.conversation_id, claim.lease_ms, "" if next_at is None else _ms(next_at)]
        if args:
            await self._settle(keys=[self._deadlines, self._claims], args=args)

    async def next_deadline(self, after: float) -> float | None:
        """The earliest deadline later than `after` (epoch seconds), if any."""
        found = await self.bus.redis.zrangebyscore(
            self._deadlines, f"({_ms(after)}", "+inf", start=0, num=1, withscores=True
        )
        return float(found[0][1]) / 1000 if found else None

    async def deadline(self, conversation_id: str) -> float | None:
        """The conversation's next deadline in epoch seconds, if it has one."""
        score = await self.bus.redis.zscore(self._deadlines, conversation_id)
        return None if score is None else float(score) / 1000
