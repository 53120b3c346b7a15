"""A background worker that runs one job every so often."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs `job` every `seconds` until stopped; the first run comes one period after start.

    A run that fails is logged and the next one comes on time: a PostgreSQL or Redis outage
    is waited out, never a crash loop. `name` is what readiness reports if the worker stops.
    """

    def __init__(self, name: str, seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.seconds = seconds
        self.job = job
        self.running = False

    async def run(self, stop: asyncio.Event) -> None:
        """Run the job every period until `stop` is set."""
        self.running = True
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.seconds)
                if stop.is_set():
                    return
                try:
                    await self.job()
                except Exception:
                    log.exception("%s failed; next run in %ss", self.name, self.seconds)
        finally:
            self.running = False
