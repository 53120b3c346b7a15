"""Trimming by acknowledgement: streams in `names.ACK_TRIMMED` lose only entries that every
consumer group has read and acknowledged, however long the consumers were down.

Redis 7.0 cannot do this on XADD (the ACKED trimming option arrived in 8.2), so a worker
trims periodically with XTRIM MINID below the oldest entry some group still needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from redis.exceptions import RedisError, ResponseError

from baton_shared.streams.bus import Bus

log = logging.getLogger(__name__)


def _next_id(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


class AckTrimmer:
    """A worker that trims each of its streams below what every group has acknowledged."""

    def __init__(self, bus: Bus, streams: Iterable[str], *, every_seconds: float = 30.0) -> None:
        self.bus = bus
        self.streams = tuple(streams)
        self.every_seconds = every_seconds
        self.running = False

    async def floor(self, stream: str) -> str | None:
        """The lowest entry id some group still needs, or None when nothing may be trimmed."""
        key = self.bus.key(stream)
        try:
            groups = await self.bus.redis.xinfo_groups(key)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None  # nothing appended yet: nothing to trim
            raise
        if not groups:
            return None  # no consumer yet: keep everything
        needed: list[str] = []
        for group in groups:
            summary = await self.bus.redis.xpending(key, group["name"])
            if summary["pending"]:
                needed.append(str(summary["min"]))
            else:
                needed.append(_next_id(str(group["last-delivered-id"])))
        return min(needed, key=lambda i: tuple(int(p) for p in i.split("-")))

    async def trim_once(self) -> int:
        """Trim every stream once; returns how many entries were removed."""
        removed = 0
        for stream in self.streams:
            floor = await self.floor(stream)
            if floor is not None:
                removed += int(
                    await self.bus.redis.xtrim(self.bus.key(stream), minid=floor, approximate=False)
                )
        return removed

    async def run(self, stop: asyncio.Event) -> None:
        """Trim every `every_seconds` until `stop` is set; Redis errors wait for the next round."""
        self.running = True
        try:
            while not stop.is_set():
                try:
                    await self.trim_once()
                except (RedisError, OSError) as exc:
                    log.warning("trimming %s failed: %s", ", ".join(self.streams), exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.every_seconds)
        finally:
            self.running = False
