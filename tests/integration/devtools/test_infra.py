"""Finding and starting PostgreSQL and Redis: env URLs, local servers, embedded servers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import psycopg
import pytest
import redis

from baton_devtools import embedded as embedded_module
from baton_devtools.infra import (
    Infra,
    create_database,
    drop_database,
    ensure_infra,
    url_for_database,
)

pytestmark = pytest.mark.integration

# Starts embedded servers, prints their pids, then waits to be killed.
PARENT = r"""
import sys, time
from pathlib import Path
from baton_devtools.infra import ensure_infra
infra = ensure_infra(Path(sys.argv[1]), env={}, prefer_embedded=True)
print(*infra.pids, flush=True)
time.sleep(600)
"""


def plain(url: str) -> str:
    """The libpq/asyncpg form of a SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name; None if it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] in ("Z", "X") else fields


def group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid` (postgres backends share the postmaster's)."""
    members = []
    for entry in Path("/proc").iterdir():
        if (
            entry.name.isdigit()
            and (fields := stat_fields(int(entry.name)))
            and fields[2] == str(pgid)
        ):
            members.append(int(entry.name))
    return members


def our_children() -> set[int]:
    return {
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and (fields := stat_fields(int(entry.name)))
        and fields[1] == str(os.getpid())
    }


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory outside pytest's tmp root.

    As root, PostgreSQL runs as an unprivileged user that must traverse the path to its data,
    and every pytest session strips the permissions of /tmp/pytest-of-<user> again.
    """
    path = Path(tempfile.mkdtemp(prefix="baton-infra-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def embedded(data_dir: Path) -> Iterator[Callable[[], Infra]]:
    """Starts embedded servers under one data dir; stops whatever a test left running."""
    started: list[Infra] = []

    def start() -> Infra:
        started.append(ensure_infra(data_dir, env={}, prefer_embedded=True))
        return started[-1]

    yield start
    for infra in started:
        infra.stop()


def test_env_urls_are_used_as_given(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql+asyncpg://u@db.invalid:1/app", "REDIS_URL": "redis://r:1/2"}
    infra = ensure_infra(tmp_path, env=env)
    assert (infra.database_url, infra.redis_url) == (env["DATABASE_URL"], env["REDIS_URL"])
    assert (infra.embedded, infra.pids) == (False, [])
    assert list(tmp_path.iterdir()) == []  # nothing was started or created


async def test_whatever_is_found_answers(data_dir: Path) -> None:
    with ensure_infra(data_dir) as infra:
        conn = await asyncpg.connect(plain(infra.database_url), timeout=5)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        assert redis.Redis.from_url(infra.redis_url).ping()


async def test_embedded_servers_start_answer_and_stop(
    embedded: Callable[[], Infra], data_dir: Path
) -> None:
    children_before = our_children()
    infra = embedded()
    assert infra.embedded
    assert (infra.postgres_source, infra.redis_source) == ("embedded", "embedded")
    assert infra.database_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    assert infra.database_url.endswith("/postgres")
    assert infra.redis_url.startswith("redis://127.0.0.1:")

    conn = await asyncpg.connect(plain(infra.database_url), timeout=5)
    assert (await conn.fetchval("SHOW server_version")).startswith("18")
    await conn.close()
    with psycopg.connect(plain(infra.database_url)) as sync_conn:
        assert sync_conn.execute("SELECT 1").fetchone() == (1,)
    client = redis.Redis.from_url(infra.redis_url)
    client.xadd("baton-test", {"k": "v"})  # streams: what the services need
    assert client.xlen("baton-test") == 1
    client.close()

    pids = infra.pids
    assert len(pids) == 2
    infra.stop()
    assert all(group_members(pid) == [] for pid in pids)
    assert our_children() <= children_before  # the lifeline watchdog is gone too
    assert not (data_dir / "postgres.json").exists()


def test_without_tcp_the_embedded_servers_use_unix_sockets(
    embedded: Callable[[], Infra], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_tcp(host: str = "127.0.0.1") -> int:
        raise OSError("no TCP here")

    monkeypatch.setattr(embedded_module, "free_port", no_tcp)
    infra = embedded()
    assert "?host=/" in infra.database_url
    assert infra.redis_url.startswith("unix:///")
    with psycopg.connect(plain(infra.database_url)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert redis.Redis.from_url(infra.redis_url).ping()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has to drop privileges")
def test_as_root_postgres_runs_as_an_unprivileged_user(embedded: Callable[[], Infra]) -> None:
    infra = embedded()
    status = Path(f"/proc/{infra.pids[0]}/status").read_text()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert uid != "0"


def test_restart_reuses_the_data_dir(embedded: Callable[[], Infra]) -> None:
    first = embedded()
    with psycopg.connect(plain(first.database_url), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
    redis.Redis.from_url(first.redis_url).set("kept", "yes")
    first.stop()

    second = embedded()
    with psycopg.connect(plain(second.database_url)) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    assert redis.Redis.from_url(second.redis_url).get("kept") == b"yes"


def test_a_second_caller_attaches_to_running_servers(embedded: Callable[[], Infra]) -> None:
    owner, guest = embedded(), embedded()
    assert (guest.database_url, guest.redis_url) == (owner.database_url, owner.redis_url)
    assert (guest.postgres_source, guest.redis_source) == ("attached", "attached")
    assert guest.pids == []
    guest.stop()  # not its servers: they stay up
    assert all(group_members(pid) for pid in owner.pids)


def test_embedded_servers_die_with_their_parent(tmp_path: Path, data_dir: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script), str(data_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2
        assert all(group_members(pid) for pid in pids)
        parent.send_signal(signal.SIGKILL)  # no atexit, no finally: only the lifeline can act
        parent.wait()
        wait_until(lambda: all(group_members(pid) == [] for pid in pids))
    finally:
        parent.kill()
        parent.wait()


def test_create_and_drop_a_private_database(data_dir: Path) -> None:
    with ensure_infra(data_dir) as infra:
        name = f"baton_test_{uuid.uuid4().hex[:8]}"
        assert create_database(infra.database_url, name) is True
        assert create_database(infra.database_url, name) is False  # already there
        url = url_for_database(infra.database_url, name)
        with psycopg.connect(plain(url), autocommit=True) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
            drop_database(infra.database_url, name)  # even with a client still connected
        drop_database(infra.database_url, name)  # and again: no error
        with psycopg.connect(plain(infra.database_url)) as conn:
            query = "SELECT 1 FROM pg_database WHERE datname = %s"
            assert conn.execute(query, (name,)).fetchone() is None


def test_url_for_database_replaces_only_the_database() -> None:
    admin = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    assert url_for_database(admin, "baton") == "postgresql+asyncpg://postgres@127.0.0.1:5432/baton"
    secret = "postgresql+asyncpg://u:p%40ss@db:6543/x?ssl=require"
    assert url_for_database(secret, "y") == "postgresql+asyncpg://u:p%40ss@db:6543/y?ssl=require"
