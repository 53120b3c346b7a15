"""What the agent forgets: its turn log and the operator messages turns have carried after
`RETENTION_DAYS`, and each conversation's
superseded checkpoints after `AGENT_CHECKPOINT_HISTORY_HOURS`.

LangGraph writes a checkpoint of the whole thread at every step and keeps them all (its
"time travel"); Baton reads only a thread's latest. A conversation whose oldest superseded
checkpoint is past the history window is pruned to its latest checkpoint by the library's
own `aprune(strategy="keep_latest")`, which also frees the blobs and writes no checkpoint
kept refers to. A turn writing to the thread meanwhile makes that thread's prune fail
(serialisation): it is tried again next round.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import AsyncConnectionPool

from baton_agent import metrics
from baton_shared.db.retention import oldest_first
from baton_shared.periodic import Periodic

log = logging.getLogger(__name__)

# The turn log is the exactly-once record of a turn: it must outlast any redelivery of the
# turn, which RETENTION_DAYS' floor of 8 days does. An operator message waits for the turn
# that carries it into the thread however long the customer stays away (deleted before,
# the model would not know what the operator said or promised).
RETENTION = [
    oldest_first("turns", "completed_at"),
    oldest_first("operator_messages", "sent_at", where="turn_id IS NOT NULL"),
]

_THREADS_WITH_OLD_HISTORY = (
    "SELECT thread_id FROM checkpoints WHERE checkpoint_ns = '' GROUP BY thread_id "
    "HAVING count(*) > 1 AND min((checkpoint->>'ts')::timestamptz) < now() - %s "
    "LIMIT %s"
)


class CheckpointHistory:
    """Prunes conversations to their latest checkpoint once their history is older than
    `keep` (`worker()` runs it every interval), `batch` conversations per query."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        saver: AsyncPostgresSaver,
        *,
        keep: timedelta,
        batch: int = 500,
    ) -> None:
        self.pool = pool
        self.saver = saver
        self.keep = keep
        self.batch = batch

    def worker(self, interval_seconds: float = 3600.0) -> Periodic:
        """The background worker that prunes every `interval_seconds`."""
        return Periodic("CheckpointHistory", interval_seconds, self.prune)

    async def prune(self) -> int:
        """Prune every conversation due; how many were pruned."""
        pruned = 0
        skipped: set[str] = set()
        while True:
            async with self.pool.connection() as conn:
                rows = await conn.execute(
                    _THREADS_WITH_OLD_HISTORY, (self.keep, self.batch + len(skipped))
                )
                due = [r["thread_id"] for r in await rows.fetchall()]
            todo = [t for t in due if t not in skipped]
            for thread_id in todo:
                try:
                    await self.saver.aprune([thread_id], strategy="keep_latest")
                except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
                    log.info("checkpoints of %s changed while pruning; next round", thread_id)
                    skipped.add(thread_id)
                    continue
                except NotImplementedError as exc:  # a channel kind the library cannot prune
                    log.warning("checkpoints of %s not pruned: %s", thread_id, exc)
                    skipped.add(thread_id)
                    continue
                pruned += 1
                metrics.CHECKPOINT_THREADS_PRUNED.inc()
            if len(todo) < self.batch:
                return pruned
