"""Rate limits in Redis, shared by every replica: per business number and per customer pair.

Both are token buckets refilled continuously, checked and taken together in one Lua script so
a message never spends one bucket's token while waiting on the other.
"""

from __future__ import annotations

import math

from baton_sender import keys
from baton_shared.streams.bus import Bus

# KEYS: buckets. ARGV: rate (tokens/s) and burst for each key, in order.
# Returns 0 when a token was taken from every bucket, else milliseconds to wait.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local b = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(b[1]) or burst
  local ts = tonumber(b[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
  levels[i] = tokens
  if tokens < 1 then
    wait = math.max(wait, math.ceil((1 - tokens) * 1000 / rate))
  end
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tokens = levels[i]
  if wait == 0 then tokens = tokens - 1 end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 1000)
end
return wait
"""


NUMBER_BURST_SECONDS = 0.1


class RateLimiter:
    """Takes send permits from the business number's and the customer's buckets."""

    def __init__(
        self, bus: Bus, *, number_mps: int, customer_per_minute: float, customer_burst: int
    ) -> None:
        self.bus = bus
        self.number_mps = number_mps
        # A tenth of a second's worth: WhatsApp measures throughput over short windows, and a
        # full second's burst on top of the steady rate would draw 130429s.
        self.number_burst = max(1, math.ceil(number_mps * NUMBER_BURST_SECONDS))
        self.customer_rate = customer_per_minute / 60
        self.customer_burst = customer_burst
        self._take = bus.redis.register_script(_TAKE)

    async def take(self, phone_number_id: str, customer: str | None) -> float:
        """Take a permit; returns 0.0 on success, else seconds until one may be available.

        `customer` None takes only the number's permit (mark-as-read, typing indicators).
        """
        bucket_keys = [self.bus.key(keys.number_bucket(phone_number_id))]
        args: list[float] = [self.number_mps, self.number_burst]
        if customer is not None:
            bucket_keys.append(self.bus.key(keys.customer_bucket(phone_number_id, customer)))
            args += [self.customer_rate, self.customer_burst]
        wait_ms = await self._take(keys=bucket_keys, args=args)
        return int(wait_ms) / 1000
