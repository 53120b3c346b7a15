"""Async engine and sessions bound to one service's schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

# Set in `Session.info` by `add_to_outbox`: this transaction staged events.
OUTBOX_STAGED = "baton_outbox_staged"


def async_url(url: str) -> str:
    """The URL with the asyncpg driver, whatever driver it named."""
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The URL with the psycopg (3) driver, for migrations and the LangGraph checkpointer."""
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


class Database:
    """One service's view of PostgreSQL: its schema first on the search path.

    The outbox relay waits on `changed`, which is set when a transaction that staged outbox
    rows commits (whichever session factory made it), so events leave as soon as the
    transaction that produced them commits, and other commits do not wake the relay.
    """

    def __init__(self, url: str, schema: str, *, pool_size: int = 10) -> None:
        self.schema = schema
        self.pool_size = pool_size
        self.engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            # No pre-ping: it costs a round trip per session. A dropped connection fails
            # one transaction (the consumer retries the entry) and the pool replaces it.
            connect_args={"server_settings": {"search_path": f"{schema},public"}},
        )
        self.changed = asyncio.Event()

        class _Session(Session):
            """Sessions of this database (its own class, so the listeners are its own)."""

        event.listen(_Session, "after_commit", self._after_commit)
        event.listen(_Session, "after_rollback", _forget_staged)
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=_Session
        )

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(OUTBOX_STAGED, False):
            self.changed.set()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Raise if PostgreSQL cannot answer."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _forget_staged(session: Session) -> None:
    session.info.pop(OUTBOX_STAGED, None)
