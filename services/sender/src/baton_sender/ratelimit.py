"""Rate limits in Redis, shared by every replica: per business number and per customer pair.

Each limit is a rate with a burst, kept as its theoretical arrival time (GCRA, the token
bucket's equivalent in one number): when its next message is due at the steady rate. Both
limits are checked and taken together in one Lua script, at the time the message will go: a
message held by its customer's pacing is refused with that wait and asks again then (taking
the number's slot free when it asked let messages so held go together, several times the
number's rate). A permit may be *reserved* ahead on the number's limit: when the wait is at
most `max_wait`, the slot is taken now and the caller sleeps until it, without asking again.
Concurrent senders thus line up in slots `1 / rate` apart instead of polling, and each message
costs one script call. Permits of concurrent sends are asked for together in one pipelined
round trip (`Permits`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from baton_sender import keys
from baton_sender.coalesce import Coalescer
from baton_shared.streams.bus import Bus

# KEYS: the auth-pause key, the number's pause key, then the limits' keys. ARGV: max wait (ms)
# for a reservation, then the interval (ms between messages at the steady rate) and the
# tolerance (ms ahead a message may go: the burst) of each limit, in order.
# Each limit key holds its theoretical arrival time (TAT, epoch ms): when its next message
# would be due at the steady rate. A message may go once every limit allows it; it is charged
# to every limit at the time it goes (so a limit that waits on another one does not lend its
# slot early).
# The number's limit is the first; a slot is reserved ahead only on it. A message that waits
# on its customer's pacing is refused (nothing taken) with that wait: its caller asks again
# then. Reserving the number's slot of that later moment would hold every other customer of
# the number back until it, as the number's limit is one arrival time.
# A limit's arrival time lies at most its interval and tolerance (a full burst) plus the
# reservations ahead (`max_wait`: at most a second) past now; one further ahead comes from a
# Redis clock that stepped back (or a key written by hand) and is read as that bound.
# Returns {wait_ms, reserved (1/0), paused_ms, pause}: paused_ms > 0 while sends are paused
# (nothing taken) after a token error (pause 1) or the number's 130429 (pause 2); else
# reserved = 1 when the message's slot is taken in every limit, due in wait_ms; reserved = 0
# when its customer's pacing holds it, or the number's wait is longer than allowed (nothing
# taken).
_TAKE = """
local LOOK_AHEAD_MS = 2000
for k = 1, 2 do
  local paused = redis.call('PTTL', KEYS[k])
  if paused > 0 then return {0, 0, paused, k} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local at = now
local paced = now
local tats = {}
for i = 3, #KEYS do
  local ahead = tonumber(ARGV[2 * i - 4]) + tonumber(ARGV[2 * i - 3]) + LOOK_AHEAD_MS
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  tat = math.min(math.max(now, tat), now + ahead)
  tats[i] = tat
  local allowed = tat - tonumber(ARGV[2 * i - 3])
  if i == 3 then at = math.max(at, allowed) else paced = math.max(paced, allowed) end
end
if paced > at then return {math.ceil(paced - now), 0, 0, 0} end
local wait = math.ceil(at - now)
if wait > tonumber(ARGV[1]) then return {wait, 0, 0, 0} end
for i = 3, #KEYS do
  local tat = math.max(tats[i], at) + tonumber(ARGV[2 * i - 4])
  redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
end
return {wait, 1, 0, 0}
"""


NUMBER_BURST_SECONDS = 0.1


@dataclass(frozen=True)
class Permit:
    """The answer to one permit request.

    Attributes:
        wait: seconds until the permit's slot (reserved) or until one may be free (refused:
            the customer's pacing, or the number's limit beyond `max_wait`).
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
        args: list[float] = [
            round(request.max_wait * 1000),
            *_spacing(*self.rate_of(request.phone_number_id)),
        ]
        if request.customer is not None:
            bucket_keys.append(
                self.bus.key(keys.customer_bucket(request.phone_number_id, request.customer))
            )
            args += _spacing(self.customer_rate, self.customer_burst)
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


def _spacing(rate: float, burst: int) -> tuple[float, float]:
    """A limit of `rate` messages per second with bursts of `burst`, as the script takes it:
    the interval between messages and how far ahead of it a message may go (ms)."""
    interval = 1000 / rate
    return interval, (burst - 1) * interval


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
