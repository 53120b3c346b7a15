"""The ticker: a worker that claims due conversations in Redis and releases their turns, and
rebuilds the timers from PostgreSQL at start and periodically (in case Redis lost them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from baton_buffer import metrics
from baton_buffer.context import BufferContext
from baton_buffer.db import repo
from baton_buffer.release import look, release
from baton_buffer.rules import next_check
from baton_buffer.timers import Claim

log = logging.getLogger(__name__)

ACTIVE_SAMPLE_SECONDS = 5.0  # how often `baton_buffer_active_conversations` is sampled
MIN_PAUSE_SECONDS = 0.001


class Ticker:
    """Releases due turns until stopped; any number of replicas may run one."""

    def __init__(
        self,
        ctx: BufferContext,
        *,
        tick_seconds: float = 0.05,
        batch: int = 200,
        concurrency: int = 8,
        chunk: int = 50,
        recovery_seconds: float = 60.0,
        active_sample_seconds: float = ACTIVE_SAMPLE_SECONDS,
    ) -> None:
        self.ctx = ctx
        self.tick_seconds = tick_seconds
        self.batch = batch
        self.chunk = max(1, chunk)
        self.recovery_seconds = recovery_seconds
        self.active_sample_seconds = active_sample_seconds
        self.running = False
        self._slots = asyncio.Semaphore(concurrency)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set; PostgreSQL or Redis outages are waited out."""
        self.running = True
        next_recovery = next_sample = 0.0
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() >= next_recovery:
                        await self.recover()
                        next_recovery = time.monotonic() + self.recovery_seconds
                    if time.monotonic() >= next_sample:
                        next_sample = time.monotonic() + self.active_sample_seconds
                        await self.sample_active()
                    if await self.tick() >= self.batch:
                        continue
                    pause = await self.pause()
                except Exception:
                    log.exception("buffer tick failed; retrying")
                    pause = self.tick_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
        finally:
            self.running = False

    async def pause(self) -> float:
        """How long to wait before the next tick: until the next deadline, at most a tick
        (`tick_seconds`), so a turn is released when it falls due rather than up to a tick
        later. A deadline due already (another replica holds it) waits a whole tick."""
        now = self.ctx.clock()
        at = await self.ctx.timers.next_deadline(now)
        if at is None:
            return self.tick_seconds
        return min(self.tick_seconds, max(MIN_PAUSE_SECONDS, at - now))

    async def tick(self) -> int:
        """Claim due conversations and release their turns; returns how many were claimed.

        The claims are looked at in chunks of `chunk` conversations (`release.look`: one
        read, then one transaction for those due), up to `concurrency` chunks at once."""
        claims = await self.ctx.timers.claim_due(self.ctx.clock(), self.batch)
        chunks = [claims[i : i + self.chunk] for i in range(0, len(claims), self.chunk)]
        await asyncio.gather(*(self._release(chunk) for chunk in chunks))
        return len(claims)

    async def _release(self, claims: list[Claim]) -> None:
        async with self._slots:
            try:
                next_at = await look(self.ctx, [c.conversation_id for c in claims])
            except Exception:
                if len(claims) == 1:
                    # The claim stays until its lease lapses; then a replica retries.
                    log.exception(
                        "release failed", extra={"conversation_id": claims[0].conversation_id}
                    )
                    return
                # One conversation must not hold up the others: release them one by one.
                log.warning("release of %d failed; one by one", len(claims), exc_info=True)
                for claim in claims:
                    await self._release_one(claim)
                return
            await self.ctx.timers.settle_many([(c, next_at[c.conversation_id]) for c in claims])

    async def _release_one(self, claim: Claim) -> None:
        try:
            next_at = await release(self.ctx, claim.conversation_id)
        except Exception:
            log.exception("release failed", extra={"conversation_id": claim.conversation_id})
            return
        await self.ctx.timers.settle(claim, next_at)

    async def sample_active(self) -> int:
        """Set `baton_buffer_active_conversations` from PostgreSQL; returns the count."""
        async with self.ctx.db.sessions() as session:
            active = await repo.active_conversations(session)
        metrics.ACTIVE_CONVERSATIONS.set(active)
        return active

    async def recover(self) -> int:
        """Re-arm the timer of every open conversation from PostgreSQL; returns how many."""
        async with self.ctx.db.sessions() as session:
            states = await repo.open_schedule_states(session)
        deadlines: dict[str, float] = {}
        for conversation_id, state in states.items():
            at = next_check(self.ctx.rules, state.in_flight_since, state.arrivals)
            if at is not None:
                deadlines[conversation_id] = at
        await self.ctx.timers.schedule_many(deadlines)
        return len(deadlines)
