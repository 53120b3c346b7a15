"""Inbox retention: rows past it are deleted in batches, newer ones keep de-duplicating."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from baton_shared.db import Database, InboxPruner, claim_inbox
from baton_shared.testing import wait_until

pytestmark = pytest.mark.integration


async def _count(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(text("SELECT count(*) FROM inbox")) or 0)


async def test_rows_older_than_the_retention_are_pruned(db: Database) -> None:
    old = [uuid.uuid4() for _ in range(25)]
    recent = uuid.uuid4()
    async with db.sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO inbox (consumer, event_id, processed_at) "
                "SELECT 'c', e, now() - interval '31 days' FROM unnest(CAST(:ids AS uuid[])) e"
            ),
            {"ids": old},
        )
        assert await claim_inbox(session, "c", recent)
    pruner = InboxPruner(db, retention=timedelta(days=30), batch=10)  # three batches
    assert await pruner.prune_inbox() == 25
    assert await _count(db) == 1
    async with db.sessions() as session, session.begin():
        assert not await claim_inbox(session, "c", recent)  # still a duplicate
        assert await claim_inbox(session, "c", old[0])  # forgotten: would be processed again
    assert await pruner.prune() == {"inbox": 0}


async def test_one_replica_prunes_at_a_time_and_the_worker_stops(db: Database) -> None:
    async with db.sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO inbox (consumer, event_id, processed_at) "
                "VALUES ('c', gen_random_uuid(), now() - interval '40 days')"
            )
        )
    async with db.sessions() as session, session.begin():
        # another replica is pruning right now (holds the schema's pruning lock)
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('prune:inbox:' || current_schema()))")
        )
        assert await InboxPruner(db, retention=timedelta(days=30)).prune_inbox() == 0
    assert await InboxPruner(db, retention=timedelta(days=30)).prune_inbox() == 1

    worker = InboxPruner(db, retention=timedelta(days=30)).worker(interval_seconds=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_until(lambda: _true(worker.running), what="pruner running")
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert not worker.running


async def _true(value: bool) -> bool:
    return value
