"""Find or start PostgreSQL and Redis: URLs from the environment first, servers on the usual
local ports next, embedded servers (see `baton_devtools.embedded`) under a data directory last.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import errors, sql
from sqlalchemy.engine import make_url

from baton_devtools.embedded import (
    InfraError,
    Server,
    attach,
    free_port,
    libpq_url,
    locked,
    postgres_answers,
    redis_answers,
    start_postgres,
    start_redis,
)
from baton_devtools.lifeline import Lifeline

__all__ = [
    "Infra",
    "InfraError",
    "Lifeline",
    "create_database",
    "drop_database",
    "ensure_infra",
    "free_port",
    "main",
    "postgres_answers",
    "redis_answers",
    "url_for_database",
]

logger = logging.getLogger(__name__)

LOCAL_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
FORCE_EMBEDDED_ENV = "BATON_EMBEDDED_INFRA"  # "1": skip the local-port probe


@dataclass
class Infra:
    """Where PostgreSQL (admin database URL) and Redis are, and the embedded servers we own."""

    database_url: str
    redis_url: str
    embedded: bool
    postgres_source: str = "env"  # env | local | embedded | attached
    redis_source: str = "env"
    _servers: list[Server] = field(default_factory=list, repr=False)
    _lifeline: Lifeline | None = field(default=None, repr=False)

    @property
    def pids(self) -> list[int]:
        """Process ids of the embedded servers this Infra started (and will stop)."""
        return [s.proc.pid for s in self._servers if s.proc is not None]

    def stop(self) -> None:
        """Stop the embedded servers this Infra started; servers found elsewhere stay up."""
        for server in reversed(self._servers):
            server.stop(self._lifeline)
        self._servers.clear()
        if self._lifeline is not None:
            self._lifeline.close()
            self._lifeline = None

    def __enter__(self) -> Infra:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def ensure_infra(
    data_dir: Path, *, env: Mapping[str, str] = os.environ, prefer_embedded: bool = False
) -> Infra:
    """Find or start PostgreSQL and Redis (env URLs, then local ports, then embedded)."""
    skip_local = prefer_embedded or env.get(FORCE_EMBEDDED_ENV, "") not in ("", "0", "false")
    pg_url, pg_source = env.get("DATABASE_URL"), "env"
    if not pg_url and not skip_local and postgres_answers(LOCAL_POSTGRES_URL):
        pg_url, pg_source = LOCAL_POSTGRES_URL, "local"
    redis_url, redis_source = env.get("REDIS_URL"), "env"
    if not redis_url and not skip_local and redis_answers(LOCAL_REDIS_URL):
        redis_url, redis_source = LOCAL_REDIS_URL, "local"
    if pg_url and redis_url:
        return Infra(pg_url, redis_url, False, pg_source, redis_source)

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    infra = Infra(pg_url or "", redis_url or "", True, pg_source, redis_source)
    infra._lifeline = Lifeline()
    try:
        with locked(data_dir / ".infra.lock"):
            if not pg_url:
                server = attach(data_dir / "postgres.json", postgres_answers)
                server = server or start_postgres(data_dir, infra._lifeline)
                infra.database_url, infra.postgres_source = server.url, _source(server)
                infra._servers.append(server)
            if not redis_url:
                server = attach(data_dir / "redis.json", redis_answers)
                server = server or start_redis(data_dir, infra._lifeline)
                infra.redis_url, infra.redis_source = server.url, _source(server)
                infra._servers.append(server)
    except BaseException:
        infra.stop()
        raise
    return infra


def _source(server: Server) -> str:
    return "embedded" if server.proc is not None else "attached"


def url_for_database(admin_url: str, name: str) -> str:
    """The same server URL with its database replaced by `name`."""
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def create_database(admin_url: str, name: str) -> bool:
    """Create database `name` unless it exists; True when it was created."""
    with psycopg.connect(libpq_url(admin_url), autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except errors.DuplicateDatabase:  # created concurrently by someone else
            return False
        return True


def drop_database(admin_url: str, name: str) -> None:
    """Drop database `name` if it exists, disconnecting its clients."""
    with psycopg.connect(libpq_url(admin_url), autocommit=True, connect_timeout=5) as conn:
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        conn.execute(query)


def main(argv: Sequence[str] | None = None) -> int:
    """`baton-dev infra`: print DATABASE_URL and REDIS_URL; `--serve` keeps embedded ones up."""
    parser = argparse.ArgumentParser(prog="baton-dev infra", description=main.__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument("--serve", action="store_true", help="keep embedded servers running")
    parser.add_argument("--embedded", action="store_true", help="skip the local-port probe")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    infra = ensure_infra(args.data_dir, prefer_embedded=args.embedded)
    with infra:
        print(f"DATABASE_URL={infra.database_url}", flush=True)
        print(f"REDIS_URL={infra.redis_url}", flush=True)
        sources = f"# postgres: {infra.postgres_source}, redis: {infra.redis_source}"
        print(sources, file=sys.stderr, flush=True)
        if not infra.pids:
            return 0
        if not args.serve:
            print("# embedded servers stop now; use --serve to keep them", file=sys.stderr)
            return 0
        return _serve_until_signal(infra)


def _serve_until_signal(infra: Infra) -> int:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    print("# serving until Ctrl-C", file=sys.stderr, flush=True)
    try:
        while all(s.proc is None or s.proc.poll() is None for s in infra._servers):
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    print("# an embedded server exited; see its log under the data directory", file=sys.stderr)
    return 1
