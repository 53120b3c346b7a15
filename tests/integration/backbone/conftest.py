"""A scratch schema with inbox, outbox and one state table, for backbone tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from baton_shared.db import Database
from baton_shared.db.tables import metadata


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A Database on a fresh schema private to one test."""
    schema = f"backbone_{uuid.uuid4().hex[:8]}"
    database = Database(database_url, schema, pool_size=4)
    async with database.engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.execute(text(f'SET search_path TO "{schema}"'))
        await conn.run_sync(metadata.create_all)
        await conn.execute(text("CREATE TABLE state (event_id uuid PRIMARY KEY, n int)"))
    yield database
    async with database.engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await database.dispose()
