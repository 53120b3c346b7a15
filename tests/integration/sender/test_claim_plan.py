"""The claim stays fast however PostgreSQL caches its plan (regression: the 80/s stall).

A generic plan made while `messages` was empty re-ran the claim's LIMIT subquery for every
queued row, with a sequential scan inside: with a backlog of ~2,000 one claim ran for minutes
and nothing was sent. The session here forces generic plans, so the plan is made on the empty
table exactly as PostgreSQL does on its own after five runs of the prepared statement.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from baton_sender.db import repo
from baton_sender.dispatch.order import NO_LIMIT, Bound
from baton_shared.db import Database

pytestmark = pytest.mark.integration

# `total` messages to `customers` customers served round-robin, the first `sent` sent, the
# rest queued.
QUEUE_ROWS = text("""
INSERT INTO messages (command_id, phone_number_id, recipient, conversation_id, author, kind,
                      command, request_event, status)
SELECT :name || '-' || n, :name || '-number', 'c' || (n % :customers), 'x', 'operator', 'text',
       '{}', '', CASE WHEN n < :sent THEN 'sent' ELSE 'queued' END
FROM generate_series(0, :total - 1) AS n
""")


ROWS = {"name": "plan", "customers": 800, "sent": 1000, "total": 3000}


async def test_claim_planned_on_an_empty_table_stays_fast_with_a_backlog(
    database_url: str,
) -> None:
    db = Database(database_url, "sender", pool_size=1)
    try:
        async with db.sessions() as session, session.begin():
            await session.execute(text("TRUNCATE messages, windows, inbox, outbox"))
        async with db.sessions() as session, session.begin():
            await session.execute(text("SET plan_cache_mode = force_generic_plan"))
        for _ in range(6):  # the plan is made (and cached) on the empty table
            async with db.session() as session:
                assert await repo.claim_heads(session, 40, 60, NO_LIMIT) == []
        async with db.session() as session:
            await session.execute(QUEUE_ROWS, ROWS)
        async with db.session() as session:
            # Without the fix this ran for minutes; any sane plan takes milliseconds.
            rows = await asyncio.wait_for(repo.claim_heads(session, 40, 60, NO_LIMIT), timeout=30)
        assert len(rows) == 40
        assert len({row.recipient for row in rows}) == 40  # one head per customer
        assert [row.seq for row in rows] == sorted(row.seq for row in rows)
    finally:
        async with db.session() as session:
            await session.execute(text("TRUNCATE messages, windows, inbox, outbox"))
        await db.dispose()


# The benchmark's shape: 10,000 customers served round-robin, a backlog of 15,000 queued.
BACKLOG = {"name": "walk", "customers": 10_000, "sent": 25_000, "total": 40_000}


async def test_claim_walks_the_queue_in_order_on_a_never_analyzed_table(
    database_url: str,
) -> None:
    # Without statistics PostgreSQL guessed ~100 queued rows and chose to read and sort every
    # queued row on each claim (cost growing with the backlog; the 1,000/s bottleneck). The
    # claim's planning settings leave the ordered walk of `messages_queued` as the only plan.
    db = Database(database_url, "sender", pool_size=1)
    try:
        async with db.session() as session:
            await session.execute(text("TRUNCATE messages, windows, inbox, outbox"))
            await session.execute(QUEUE_ROWS, BACKLOG)
        async with db.session() as session:
            await session.execute(repo._CLAIM_PLANNING)
            # With customers held back by another replica's entries (as many as a dead
            # replica's read batch): one lookup per row walked, not a pass over the held set.
            held = {("1", f"c{n}"): (1_700_000_000_000, n) for n in range(256)}
            explained = await session.execute(
                text(f"EXPLAIN {repo._CLAIM_HEADS.text}"),
                repo.claim_parameters(40, 60, Bound((1_790_000_000_000, 0), held)),
            )
            plan = "\n".join(str(line[0]) for line in explained.all())
        assert "messages_queued" in plan, plan
        assert "Sort" not in plan, plan
        assert "Function Scan" not in plan, plan
    finally:
        async with db.session() as session:
            await session.execute(text("TRUNCATE messages, windows, inbox, outbox"))
        await db.dispose()
