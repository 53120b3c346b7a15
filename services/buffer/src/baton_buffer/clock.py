"""One clock for every buffer replica: Redis's.

Replicas compare times that other replicas took: a message's arrival, a turn's start, a
conversation's deadline. Each host's own clock may be off (no time sync, a VM resumed from a
pause), and two hosts a second apart would shift every quiet window that crosses them: a
burst released a second early on one, a turn taken for stuck a second late on the other.

Asking Redis (`TIME`) on every reading would cost a round trip per message. Instead the
clock measures how far this host's clock is from Redis's, from the quickest of a few round
trips (the offset is known to within half of it), adds that to the local clock, and measures
again every `every` seconds, as a worker of the runtime. Until the first measurement
succeeds it reads the local clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

PROBES = 3  # round trips per measurement; the quickest one is kept
DRIFT_WARNING_SECONDS = 1.0  # a host this far from Redis's clock is worth a line in the log


class RedisClock:
    """Wall-clock time in epoch seconds, as Redis's clock gives it (a callable, like
    `time.time`)."""

    def __init__(
        self, redis: Redis, *, every: float = 30.0, local: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.every = every
        self.local = local
        self.offset = 0.0  # Redis's clock minus this host's, in seconds
        self.synced = False
        self.running = False

    def __call__(self) -> float:
        return self.local() + self.offset

    async def sync(self) -> float:
        """Measure the offset again; returns it."""
        best: tuple[float, float] | None = None  # (round trip, offset)
        for _ in range(PROBES):
            sent = self.local()
            seconds, micros = await self.redis.time()
            received = self.local()
            round_trip = received - sent
            offset = seconds + micros / 1_000_000 - (sent + received) / 2
            if best is None or round_trip < best[0]:
                best = (round_trip, offset)
        assert best is not None
        if abs(best[1]) >= DRIFT_WARNING_SECONDS and not self.synced:
            log.warning(
                "this host's clock is %.3f s %s Redis's; the buffer uses Redis's",
                abs(best[1]),
                "behind" if best[1] > 0 else "ahead of",
            )
        self.offset, self.synced = best[1], True
        return self.offset

    async def start(self) -> None:
        """The first measurement, before the workers start (`build_app`'s `on_start`); a
        Redis that is not there yet only delays it to the first run of the worker."""
        try:
            await self.sync()
        except (RedisError, OSError) as exc:
            log.warning("could not read Redis's clock yet (%s); using this host's", exc)

    async def run(self, stop: asyncio.Event) -> None:
        """Measure every `every` seconds until `stop` is set (1 s after a failure)."""
        self.running = True
        try:
            while not stop.is_set():
                pause = self.every
                try:
                    await self.sync()
                except (RedisError, OSError) as exc:
                    log.warning("could not read Redis's clock: %s", exc)
                    pause = 1.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
        finally:
            self.running = False
