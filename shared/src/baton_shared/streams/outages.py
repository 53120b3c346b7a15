"""Telling an outage from a poison entry.

A handler that fails because PostgreSQL or Redis is down, restarting or out of connections
would succeed later with the same entry; counting those failures towards dead-lettering would
move every entry read during a few minutes' outage to the dead-letter stream. `is_outage`
recognises them by the exception and its explicit causes (SQLAlchemy and psycopg wrap the
driver's error with `raise ... from`), never by implicit context, so an error raised while
handling an outage is not mistaken for one.
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import psycopg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError as RedisOutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import exc as sa_exc

_OUTAGES: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted (OSError subclasses)
    TimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    RedisOutOfMemoryError,  # full (maxmemory, noeviction): refuses writes until drained
    asyncpg.exceptions.PostgresConnectionError,  # cannot connect, connection failure
    asyncpg.exceptions.ConnectionDoesNotExistError,  # closed mid-operation
    asyncpg.exceptions.AdminShutdownError,  # the server is shutting down or restarting
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,  # starting up, or in recovery
    asyncpg.exceptions.IdleSessionTimeoutError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a replica during a failover
    psycopg.OperationalError,  # the checkpointer's driver: connection lost or refused
    sa_exc.TimeoutError,  # no pooled connection came free in time
)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` (or what explicitly caused it) says a server is unreachable or unwilling
    for now, not that the entry is bad."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _OUTAGES):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__
    return False
