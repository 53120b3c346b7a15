"""Which failures are outages (retried without counting) and which are the entry's own."""

from __future__ import annotations

import asyncpg
import psycopg
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import exc as sa_exc

from baton_shared.streams.outages import is_outage


def wrapped(cause: BaseException) -> BaseException:
    """As SQLAlchemy raises a driver's error: `raise DBAPIError(...) from cause`."""
    try:
        try:
            raise cause
        except BaseException as exc:
            raise sa_exc.DBAPIError("SELECT 1", {}, exc) from exc
    except sa_exc.DBAPIError as outer:
        return outer


def raised_while_handling(first: BaseException, second: BaseException) -> BaseException:
    """`second` raised inside an `except` for `first`: implicit context, not a cause."""
    try:
        try:
            raise first
        except BaseException:
            raise second  # noqa: B904 - the implicit context is the point
    except BaseException as exc:
        return exc


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(),
        TimeoutError(),
        RedisConnectionError("down"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle of operation"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        sa_exc.TimeoutError("QueuePool limit reached"),
        wrapped(ConnectionRefusedError(111, "refused")),
        wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages(exc: BaseException) -> None:
    assert is_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad payload"),
        KeyError("field"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.QueryCanceledError("statement timeout"),  # may be the entry's size
        asyncpg.exceptions.UntranslatableCharacterError("\\u0000 cannot be converted"),
        wrapped(asyncpg.exceptions.DataError("invalid input syntax")),
        raised_while_handling(ConnectionRefusedError(111, "refused"), ValueError("bug")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_entrys_own_failures(exc: BaseException) -> None:
    assert not is_outage(exc)
