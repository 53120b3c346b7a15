"""The LangGraph checkpointer: psycopg 3 pool on the agent schema (tables by migration)."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import make_url

SCHEMA = "agent"


def libpq_url(database_url: str) -> str:
    """The database URL as libpq reads it (no SQLAlchemy driver suffix)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def checkpoint_pool(database_url: str, *, max_size: int) -> AsyncConnectionPool[Any]:
    """A closed pool of connections set up as AsyncPostgresSaver needs; open it at start."""
    return AsyncConnectionPool(
        libpq_url(database_url),
        min_size=1,
        max_size=max_size,
        open=False,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            # The saver's SQL names no schema: its tables live in the agent schema.
            "options": f"-c search_path={SCHEMA}",
        },
    )


class PooledPostgresSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` whose operations run side by side, one pooled connection each.

    The library guards every operation with one `asyncio.Lock` per saver, which is needed
    for a single shared connection but, with a pool, serialises every checkpoint read and
    write of the process (langgraph issue #7259, fix proposed in PR #7269): hundreds of
    concurrent turns would queue behind it. With a pool each operation takes its own
    connection, so a semaphore the size of the pool is enough.
    """

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        super().__init__(pool)
        # Same `async with` protocol; typed as a Lock upstream.
        self.lock = asyncio.Semaphore(pool.max_size)  # type: ignore[assignment]


async def open_checkpointer(pool: AsyncConnectionPool[Any]) -> AsyncPostgresSaver:
    """Open the pool and return the saver (needs a running event loop)."""
    await pool.open(wait=True)
    saver = PooledPostgresSaver(pool)
    # Tables come from migration 0003; setup() only applies migrations of a newer library.
    await saver.setup()
    return saver
