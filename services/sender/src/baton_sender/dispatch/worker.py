"""The dispatcher: claims due messages (one per customer) and sends them concurrently."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

from baton_sender import metrics
from baton_sender.context import SenderContext
from baton_sender.db import repo
from baton_sender.dispatch import record
from baton_sender.dispatch.send import send_one

log = logging.getLogger(__name__)
MIN_STEP_SECONDS = 0.005
# Claim no more than this many seconds of the business number's rate ahead: a claimed message
# reserves a rate-limit slot (see `ratelimit`), and slots much further ahead would only wait.
CLAIM_AHEAD_SECONDS = 0.5


class Dispatcher:
    """A background worker (see `baton_shared.runtime.Worker`) of one sender replica."""

    def __init__(self, ctx: SenderContext, *, poll_seconds: float = 0.5) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self.recover_every = max(1.0, ctx.settings.claim_lease_seconds / 4)
        self.running = False
        settings = ctx.settings
        self.max_in_flight = min(
            settings.dispatch_concurrency,
            max(8, math.ceil(settings.fastest_rate_mps * CLAIM_AHEAD_SECONDS)),
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_recovery = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until `stop` is set; then let in-flight sends finish."""
        self.running = True
        try:
            while not stop.is_set():
                self.ctx.work.clear()
                try:
                    await self.step()
                except Exception:  # PostgreSQL or Redis away: try again after the poll
                    log.exception("dispatcher step failed; retrying")
                await self._wait(stop)
                # Completions wake us one by one; claiming at most every MIN_STEP_SECONDS
                # claims them in batches instead of one query per message.
                await asyncio.sleep(MIN_STEP_SECONDS)
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self.ctx.settings.wa_http_timeout + 5)
        finally:
            self.running = False

    async def step(self) -> int:
        """Recover stale work when due, then claim and start due messages; returns started."""
        if time.monotonic() >= self._next_recovery:
            await record.recover(self.ctx)
            self._next_recovery = time.monotonic() + self.recover_every
        free = self.max_in_flight - len(self._tasks)
        if free <= 0:
            return 0
        below = await self.ctx.recorded.below()  # invariant 6 across replicas: see `order`
        async with self.ctx.db.session() as session:
            rows = await repo.claim_heads(
                session, free, self.ctx.settings.claim_lease_seconds, below
            )
        for row in rows:
            task = asyncio.create_task(self._send(row))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        metrics.IN_FLIGHT.set(len(self._tasks))
        return len(rows)

    async def _send(self, row: Any) -> None:
        try:
            await send_one(self.ctx, row)
        except Exception:  # left claimed/calling: the lease recovery finishes it
            log.exception("sending message %d failed unexpectedly", row.seq)
        finally:
            self.ctx.work.set()  # the customer's next message may now be due

    async def _wait(self, stop: asyncio.Event) -> None:
        waiters = {asyncio.ensure_future(self.ctx.work.wait()), asyncio.ensure_future(stop.wait())}
        _, pending = await asyncio.wait(
            waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
