"""Trimming by acknowledgement: streams in `names.ACK_TRIMMED` (all of Baton's) lose only
entries that Baton's consumer groups have read and acknowledged, however long its consumers
were down.

Other groups (an integrator's own, see docs/events.md) are waited for too, as long as the
stream holds no more than `keep` entries (`STREAM_MAXLEN`): beyond that, what only they still
need goes, so an abandoned group cannot fill Redis. A stream on which no Baton group exists
yet is left alone (the group, when made, starts from the beginning).

Redis 7.0 cannot do this on XADD (the ACKED trimming option arrived in 8.2), so a worker
trims periodically with XTRIM MINID below the oldest entry the groups still need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from redis.exceptions import RedisError, ResponseError

from baton_shared.streams import names
from baton_shared.streams.bus import Bus, position

log = logging.getLogger(__name__)


def _next_id(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


class AckTrimmer:
    """A worker that trims each of its streams below what every group has acknowledged."""

    def __init__(
        self,
        bus: Bus,
        streams: Iterable[str],
        *,
        every_seconds: float = 30.0,
        keep: int | None = None,
    ) -> None:
        self.bus = bus
        self.streams = tuple(streams)
        self.every_seconds = every_seconds
        self.keep = bus.maxlen if keep is None else keep
        self.running = False

    async def floors(self, stream: str) -> tuple[str | None, str | None]:
        """The lowest entry id Baton's groups still need, and the lowest any group needs; None
        for both when nothing may be trimmed."""
        key = self.bus.key(stream)
        try:
            groups = await self.bus.redis.xinfo_groups(key)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None, None  # nothing appended yet: nothing to trim
            raise
        ours: list[str] = []
        anyone: list[str] = []
        for group in groups:
            summary = await self.bus.redis.xpending(key, group["name"])
            if summary["pending"]:
                needed = str(summary["min"])
            else:
                needed = _next_id(str(group["last-delivered-id"]))
            anyone.append(needed)
            if group["name"] in names.BATON_GROUPS:
                ours.append(needed)
        if not ours:
            return None, None  # no consumer of ours yet: keep everything for it
        return min(ours, key=position), min(anyone, key=position)

    async def trim_once(self) -> int:
        """Trim every stream once; returns how many entries were removed."""
        removed = 0
        for stream in self.streams:
            ours, anyone = await self.floors(stream)
            if ours is None or anyone is None:
                continue
            key = self.bus.key(stream)
            removed += int(await self.bus.redis.xtrim(key, minid=anyone, approximate=False))
            if ours != anyone and int(await self.bus.redis.xlen(key)) > self.keep:
                # Too long to wait for the other groups: keep only what Baton needs.
                dropped = int(await self.bus.redis.xtrim(key, minid=ours, approximate=False))
                if dropped:
                    log.warning(
                        "%s holds over %d entries: %d that only other consumer groups still "
                        "needed were trimmed",
                        stream,
                        self.keep,
                        dropped,
                    )
                removed += dropped
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
