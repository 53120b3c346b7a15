"""The LangGraph checkpointer: psycopg 3 pool on the agent schema (tables by migration)."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
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

    # The library (de)serialises blobs and writes in `asyncio.to_thread`, twice per turn;
    # a conversation's state is a few kB, cheaper to encode on the loop than to hand to a
    # thread and back (and the hop's GIL traffic slows every other turn). Same SQL, same
    # rows as upstream `aput` and `_load_checkpoint_tuple` (langgraph-checkpoint-postgres 3.x).

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Save a checkpoint (upstream `aput`, serialising inline)."""
        configurable = config["configurable"].copy()
        thread_id = configurable.pop("thread_id")
        checkpoint_ns = configurable.pop("checkpoint_ns")
        checkpoint_id = configurable.pop("checkpoint_id", None)
        copy = checkpoint.copy()
        copy["channel_values"] = copy["channel_values"].copy()
        next_config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        # Primitive values stay inline in the checkpoint row; the others go to blobs.
        blob_values = {}
        for key, value in checkpoint["channel_values"].items():
            if isinstance(value, _DeltaSnapshot):
                blob_values[key] = copy["channel_values"].pop(key)
                copy["channel_values"][key] = True
            elif value is None or isinstance(value, (str, int, float, bool)):
                pass
            else:
                blob_values[key] = copy["channel_values"].pop(key)
        async with self._cursor(pipeline=True) as cur:
            if blob_versions := {k: v for k, v in new_versions.items() if k in blob_values}:
                await cur.executemany(
                    self.UPSERT_CHECKPOINT_BLOBS_SQL,
                    self._dump_blobs(thread_id, checkpoint_ns, blob_values, blob_versions),
                )
            await cur.execute(
                self.UPSERT_CHECKPOINTS_SQL,
                (
                    thread_id,
                    checkpoint_ns,
                    checkpoint["id"],
                    checkpoint_id,
                    Jsonb(copy),
                    Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
                ),
            )
        return next_config

    async def _load_checkpoint_tuple(self, value: DictRow) -> CheckpointTuple:
        """A checkpoint row as a tuple (upstream, deserialising the writes inline)."""
        parent = value["parent_checkpoint_id"]
        return CheckpointTuple(
            {
                "configurable": {
                    "thread_id": value["thread_id"],
                    "checkpoint_ns": value["checkpoint_ns"],
                    "checkpoint_id": value["checkpoint_id"],
                }
            },
            {  # type: ignore[typeddict-item]  # the stored checkpoint, as upstream
                **value["checkpoint"],
                "channel_values": {
                    **(value["checkpoint"].get("channel_values") or {}),
                    **self._load_blobs(value["channel_values"]),
                },
            },
            value["metadata"],
            (
                {
                    "configurable": {
                        "thread_id": value["thread_id"],
                        "checkpoint_ns": value["checkpoint_ns"],
                        "checkpoint_id": parent,
                    }
                }
                if parent
                else None
            ),
            self._load_writes(value["pending_writes"]),
        )


async def open_checkpointer(pool: AsyncConnectionPool[Any]) -> AsyncPostgresSaver:
    """Open the pool and return the saver (needs a running event loop)."""
    await pool.open(wait=True)
    saver = PooledPostgresSaver(pool)
    # Tables come from migration 0003; setup() only applies migrations of a newer library.
    await saver.setup()
    return saver
