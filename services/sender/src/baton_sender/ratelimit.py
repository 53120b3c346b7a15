"""Rate limits in Redis, shared by every replica: per business number and per customer pair.

Both are token buckets refilled continuously, checked and taken together in one Lua script so
a message never spends one bucket's token while waiting on the other. A permit may be
*reserved* ahead: when the wait for the next token is at most `max_wait`, the token is taken
now (the bucket goes below zero) and the caller sleeps until its slot, without asking again.
Concurrent senders thus line up in slots `1 / rate` apart instead of polling the bucket, and
each message costs one script call. Permits of concurrent sends are asked for together in one
pipelined round trip (`Permits`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from baton_sender import keys
from baton_sender.coalesce import Coalescer
from baton_shared.streams.bus import Bus

# KEYS: the auth-pause key, the number's pause key, then buckets. ARGV: max wait (ms) for a
# reservation, then rate (tokens/s) and burst for each bucket, in order.
# Returns {wait_ms, reserved (1/0), paused_ms, pause}: paused_ms > 0 while sends are paused
# (nothing taken) after a token error (pause 1) or the number's 130429 (pause 2); else
# reserved = 1 when a token was taken from every bucket, due in wait_ms; reserved = 0 when
# the wait is longer than allowed (nothing taken).
_TAKE = """
for k = 1, 2 do
  local paused = redis.call('PTTL', KEYS[k])
  if paused > 0 then return {0, 0, paused, k} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_wait = tonumber(ARGV[1])
local levels = {}
local wait = 0
for i = 3, #KEYS do
  local rate = tonumber(ARGV[2 * i - 4])
  local burst = tonumber(ARGV[2 * i - 3])
  local b = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local tokens = tonumber(b[1]) or burst
  local ts = tonumber(b[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
  levels[i] = tokens
  if tokens < 1 then
    wait = math.max(wait, math.ceil((1 - tokens) * 1000 / rate))
  end
end
local reserved = 0
if wait <= max_wait then reserved = 1 end
for i = 3, #KEYS do
  local rate = tonumber(ARGV[2 * i - 4])
  local burst = tonumber(ARGV[2 * i - 3])
  local tokens = levels[i]
  if reserved == 1 then tokens = tokens - 1 end
  redis.call('HSET', KEYS[i], 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[i], math.ceil((burst - tokens) * 1000 / rate) + 1000)
end
return {wait, reserved, 0, 0}
"""


NUMBER_BURST_SECONDS = 0.1


@dataclass(frozen=True)
class Permit:
    """The answer to one permit request.

    Attributes:
        wait: seconds until the permit's slot (reserved) or until one may be free (refused).
        reserved: the permit is taken; send after `wait` seconds without asking again.
        paused: seconds left of a pause (nothing taken), else 0.
        token_pause: the pause follows a token error (every number), not the number's 130429.
    """

    wait: float
    reserved: bool
    paused: float = 0.0
    token_pause: bool = False


@dataclass(frozen=True)
class PermitRequest:
    """One message's permit request (`customer` None: the number's bucket only)."""

    phone_number_id: str
    customer: str | None
    max_wait: float


class RateLimiter:
    """Takes send permits from the business number's and the customer's buckets."""

    def __init__(
        self,
        bus: Bus,
        *,
        number_mps: int,
        customer_per_minute: float,
        customer_burst: int,
        number_mps_by_number: Mapping[str, int] | None = None,
    ) -> None:
        self.bus = bus
        self.number_mps = number_mps
        self.number_mps_by_number = dict(number_mps_by_number or {})
        self.number_burst = _burst(number_mps)
        self.customer_rate = customer_per_minute / 60
        self.customer_burst = customer_burst
        self._take = bus.redis.register_script(_TAKE)
        self._batches: Coalescer[PermitRequest, Permit] = Coalescer(self._many, self._one)

    async def take(self, phone_number_id: str, customer: str | None) -> float:
        """Take a permit now; returns 0.0 on success, else seconds until one may be available
        (nothing taken). `customer` None takes only the number's permit (mark-as-read, typing
        indicators). Ignores the token-error pause, not the number's pause."""
        permit = await self._one(PermitRequest(phone_number_id, customer, 0.0), pause=False)
        if permit.reserved and permit.wait <= 0:
            return 0.0
        return max(permit.wait, permit.paused, 0.001)

    async def pause_number(self, phone_number_id: str, seconds: float) -> None:
        """Hold every replica's sends from this number for `seconds` (WhatsApp answered 130429:
        the number is over its throughput, and every message sent meanwhile would draw it too)."""
        key = self.bus.key(keys.number_pause(phone_number_id))
        await self.bus.redis.set(key, "1", px=max(1, round(seconds * 1000)))

    async def reserve(self, phone_number_id: str, customer: str | None, max_wait: float) -> Permit:
        """Reserve a permit due within `max_wait` seconds, unless sends are paused; requests
        of concurrent sends share one pipelined round trip."""
        return await self._batches.submit(PermitRequest(phone_number_id, customer, max_wait))

    def rate_of(self, phone_number_id: str) -> tuple[int, int]:
        """A business number's messages per second and burst (its own rate when configured,
        e.g. 20 for a number shared with the WhatsApp Business app)."""
        mps = self.number_mps_by_number.get(phone_number_id)
        return (self.number_mps, self.number_burst) if mps is None else (mps, _burst(mps))

    def _call(self, request: PermitRequest, pause: bool) -> tuple[list[str], list[float]]:
        pause_key = self.bus.key(keys.auth_pause()) if pause else self.bus.key("sender:no-pause")
        bucket_keys = [
            pause_key,
            self.bus.key(keys.number_pause(request.phone_number_id)),
            self.bus.key(keys.number_bucket(request.phone_number_id)),
        ]
        args: list[float] = [round(request.max_wait * 1000), *self.rate_of(request.phone_number_id)]
        if request.customer is not None:
            bucket_keys.append(
                self.bus.key(keys.customer_bucket(request.phone_number_id, request.customer))
            )
            args += [self.customer_rate, self.customer_burst]
        return bucket_keys, args

    async def _one(self, request: PermitRequest, *, pause: bool = True) -> Permit:
        bucket_keys, args = self._call(request, pause)
        return _permit(await self._take(keys=bucket_keys, args=args))

    async def _many(self, requests: Sequence[PermitRequest]) -> list[Permit]:
        async with self.bus.redis.pipeline(transaction=False) as pipe:
            for request in requests:
                bucket_keys, args = self._call(request, True)
                await self._take(keys=bucket_keys, args=args, client=pipe)
            replies = await pipe.execute()
        return [_permit(reply) for reply in replies]


def _burst(mps: int) -> int:
    # A tenth of a second's worth: WhatsApp measures throughput over short windows, and a
    # full second's burst on top of the steady rate would draw 130429s.
    return max(1, math.ceil(mps * NUMBER_BURST_SECONDS))


def _permit(reply: object) -> Permit:
    wait_ms, reserved, paused_ms, pause = (int(x) for x in reply)  # type: ignore[attr-defined]
    return Permit(
        wait=wait_ms / 1000,
        reserved=bool(reserved),
        paused=paused_ms / 1000,
        token_pause=pause == 1,
    )
