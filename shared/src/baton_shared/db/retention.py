"""Retention: delete a service's old rows in small batches, one replica at a time.

Each service names the tables it prunes and how (`Prune`: a DELETE of at most `:limit` rows
older than `:keep`, an interval). A `Pruner` runs them every hour (`worker()`): each table's
batches in their own short transactions, so no statement holds locks for long, under an
advisory lock per table and schema, so two replicas never prune the same table at once (the
second skips the round).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import TextClause, text

from baton_shared.db.engine import Database
from baton_shared.observability import metrics
from baton_shared.periodic import Periodic

HOURLY = 3600.0


@dataclass(frozen=True)
class Prune:
    """How one table loses its old rows.

    Attributes:
        table: the table's name (the advisory lock's and the metric's label).
        statement: deletes at most `:limit` rows older than `:keep` (an interval) and
            nothing a live process still needs; its row count is what it deleted.
        counts_rows: the statement instead answers one row, the number it deleted (a
            statement deleting from several tables says what counts).
    """

    table: str
    statement: TextClause
    counts_rows: bool = False


def oldest_first(table: str, age_column: str, *, where: str = "") -> Prune:
    """The usual rule: rows whose `age_column` is older than the retention, found from the
    start of the heap, where append-mostly tables keep their oldest rows. `where` adds a
    condition a row must also meet to go (SQL over the table's columns)."""
    condition = f"{age_column} < now() - CAST(:keep AS interval)"
    if where:
        condition += f" AND ({where})"
    # Names and conditions come from the services' code, never from input.
    statement = (
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("  # noqa: S608
        f"SELECT ctid FROM {table} WHERE {condition} LIMIT :limit))"
    )
    return Prune(table, text(statement))


class Pruner:
    """Deletes what `rules` say is older than `retention` (see the module's docstring).

    The first round runs one interval after start, so a service back from a long outage
    handles what was waiting before anything is forgotten.
    """

    def __init__(
        self,
        db: Database,
        rules: Sequence[Prune],
        *,
        retention: timedelta,
        name: str = "Retention",
        batch: int = 10_000,
    ) -> None:
        self.db = db
        self.rules = list(rules)
        self.retention = retention
        self.name = name
        self.batch = batch

    def worker(self, interval_seconds: float = HOURLY) -> Periodic:
        """The background worker that prunes every `interval_seconds`."""
        return Periodic(f"{self.name} {self.db.schema}", interval_seconds, self.prune)

    async def prune(self) -> dict[str, int]:
        """Run every rule to the end; rows deleted per table (0 where another replica was
        pruning it)."""
        return {rule.table: await self.prune_table(rule) for rule in self.rules}

    async def prune_table(self, rule: Prune) -> int:
        """Delete `rule`'s old rows, a batch per transaction; how many."""
        total = 0
        params = {"keep": self.retention, "limit": self.batch}
        while True:
            async with self.db.sessions() as session, session.begin():
                locked = await session.scalar(
                    _TRY_LOCK, {"key": f"prune:{rule.table}:{self.db.schema}"}
                )
                if not locked:
                    return total
                result = await session.execute(rule.statement, params)
                counted = result.scalar_one() if rule.counts_rows else result.rowcount  # type: ignore[attr-defined]
                deleted = int(counted)
            total += deleted
            metrics.PRUNED.labels(self.db.schema, rule.table).inc(deleted)
            if deleted < self.batch:
                return total


_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext(:key))")
