"""`baton-dev run`: the whole stack in the foreground — PostgreSQL and Redis, migrations, the two
emulators, the five services — as child processes with one prefixed log stream.

Children start in stages; a stage starts only when every child of the previous one answers
`GET /health` with 200. Ctrl-C or SIGTERM stops the stages in reverse order (SIGTERM to each
child's process group, SIGKILL after a grace period), then the embedded servers. A child that
exits on its own stops the whole stack. A `Lifeline` watchdog stops the children even if the
supervisor itself is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TextIO

import httpx

from baton_devtools.infra import (
    Infra,
    Lifeline,
    create_database,
    ensure_infra,
    free_port,
    url_for_database,
)

APP_DATABASE = "baton"
TAIL_LINES = 30
LogSink = Callable[[str, str], None]  # (process name, one line of its output)

DEV_WA_SECRETS = {
    "WA_APP_SECRET": "dev-app-secret",
    "WA_ACCESS_TOKEN": "dev-access-token",
    "WA_VERIFY_TOKEN": "dev-verify-token",
}
GEMINI_BANNER = """\
################################################################################
##  GOOGLE_API_KEY is not set: the agent talks to the Gemini API EMULATOR at
##  {url} -- NOT to Google. Its answers are scripted, not AI.
##  Set GOOGLE_API_KEY (in the environment or .env) to use the real model.
################################################################################"""


@dataclass(frozen=True)
class ProcessSpec:
    """One child process of the stack.

    Attributes:
        name: short name for logs and `Stack.url()`.
        argv: the command; a bare name is looked up beside the running Python (the venv) first.
        port_env: environment variable that tells the child its HTTP port.
        default_port: the port when neither the environment nor `free_ports` picks one.
        stage: children of one stage start together, after the previous stage is healthy.
        migrate_argv: command run (sequentially, before any child starts) to migrate its schema.
    """

    name: str
    argv: tuple[str, ...]
    port_env: str
    default_port: int
    stage: int
    migrate_argv: tuple[str, ...] | None = None


def _service(name: str, port_env: str, port: int) -> ProcessSpec:
    cmd = f"baton-{name}"
    return ProcessSpec(name, (cmd, "serve"), port_env, port, 1, (cmd, "migrate"))


PROCESSES: tuple[ProcessSpec, ...] = (
    ProcessSpec("wa-emulator", ("baton-dev", "wa-emulator"), "WA_EMULATOR_PORT", 8090, 0),
    ProcessSpec(
        "gemini-emulator", ("baton-dev", "gemini-emulator"), "GEMINI_EMULATOR_PORT", 8091, 0
    ),
    _service("ingress", "INGRESS_PORT", 8080),
    _service("operator-api", "OPERATOR_API_PORT", 8081),
    _service("buffer", "BUFFER_PORT", 8082),
    _service("agent", "AGENT_PORT", 8083),
    _service("sender", "SENDER_PORT", 8084),
)
DEFAULT_PORTS = {spec.port_env: spec.default_port for spec in PROCESSES}


@dataclass(frozen=True)
class StackConfig:
    """How to start a stack.

    Attributes:
        env: overrides applied last, over `base_env` and `env_file`.
        data_dir: where embedded PostgreSQL and Redis keep their data.
        services: names to start (all of `processes` when None).
        processes: the process table.
        base_env: the environment to start from (`os.environ` when None).
        env_file: a `.env` file whose values apply where the environment has none.
        infra: find or start PostgreSQL and Redis and create the `baton` database.
        migrate: run every selected process's `migrate_argv` before starting anything.
        free_ports: give every process a free port unless its port variable is set.
        ready_timeout: seconds a child has to answer /health with 200.
        stop_timeout: seconds a child has between SIGTERM and SIGKILL.
        log_sink: receives every output line; a `PrefixedPrinter` on stdout when None.
        spawn: start the processes; False stops after infrastructure and migrations.
    """

    env: Mapping[str, str] = field(default_factory=dict)
    data_dir: Path = Path(".data")
    services: Collection[str] | None = None
    processes: Sequence[ProcessSpec] = PROCESSES
    base_env: Mapping[str, str] | None = None
    env_file: Path | None = None
    infra: bool = True
    migrate: bool = True
    free_ports: bool = False
    ready_timeout: float = 60.0
    stop_timeout: float = 10.0
    log_sink: LogSink | None = None
    spawn: bool = True


class StackError(RuntimeError):
    """The stack could not start."""


class PrefixedPrinter:
    """Log sink writing `name | line`, names padded to one width, coloured on a terminal."""

    COLOURS = (36, 32, 33, 35, 34, 96, 92, 93, 95, 94)
    LOUD = ("##", "ERROR")  # the supervisor's banners and errors: bold red on a terminal

    def __init__(
        self, names: Sequence[str], stream: TextIO | None = None, colour: bool | None = None
    ) -> None:
        self._stream = sys.stdout if stream is None else stream
        self._width = max(map(len, names), default=0)
        self._colour = self._stream.isatty() if colour is None else colour
        self._codes = {n: self.COLOURS[i % len(self.COLOURS)] for i, n in enumerate(names)}

    def __call__(self, name: str, line: str) -> None:
        prefix = f"{name:<{self._width}} |"
        if self._colour:
            prefix = f"\x1b[{self._codes.get(name, 1)}m{prefix}\x1b[0m"
            if name == "stack" and line.startswith(self.LOUD):
                line = f"\x1b[1;31m{line}\x1b[0m"
        self._stream.write(f"{prefix} {line}\n")
        self._stream.flush()


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines of a `.env` file (comments, `export`, quotes); {} when it is missing."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        key, sep, value = raw.strip().removeprefix("export ").partition("=")
        if not sep or key.lstrip().startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def build_env(config: StackConfig) -> tuple[dict[str, str], list[str]]:
    """The children's environment (ports, dev doubles, BATON_ENV) and notices to print."""
    env = dict(os.environ if config.base_env is None else config.base_env)
    for key, value in (read_env_file(config.env_file) if config.env_file else {}).items():
        env.setdefault(key, value)
    env.update(config.env)
    taken = {env[spec.port_env] for spec in config.processes if env.get(spec.port_env)}
    for spec in config.processes:
        if not env.get(spec.port_env):
            port = str(free_port() if config.free_ports else spec.default_port)
            while config.free_ports and port in taken:  # free and distinct
                port = str(free_port())
            env[spec.port_env] = port
            taken.add(port)

    def local(port_env: str) -> str:
        return f"http://127.0.0.1:{env.get(port_env) or DEFAULT_PORTS[port_env]}"

    env.setdefault("BATON_ENV", "development")
    env["PYTHONUNBUFFERED"] = "1"
    notices = []
    if not env.get("GOOGLE_API_KEY"):
        env.setdefault("GEMINI_BASE_URL", local("GEMINI_EMULATOR_PORT"))
        env["GOOGLE_API_KEY"] = "emulator"
        notices.append(GEMINI_BANNER.format(url=env["GEMINI_BASE_URL"]))
    if not env.get("WA_GRAPH_URL"):
        env["WA_GRAPH_URL"] = local("WA_EMULATOR_PORT")
        for key, value in DEV_WA_SECRETS.items():
            env.setdefault(key, value)
    env.setdefault("INGRESS_WEBHOOK_URL", local("INGRESS_PORT") + "/webhook")
    return env, notices


@dataclass
class _Child:
    spec: ProcessSpec
    port: int
    proc: asyncio.subprocess.Process
    tail: deque[str]
    pump: asyncio.Task[None]
    watch: asyncio.Task[None] | None = None


class Stack:
    """The stack's processes, e.g. in an end-to-end test::

    async with start_stack({"DATABASE_URL": private_db_url}, tmp_path) as stack:
        httpx.post(stack.url("wa-emulator") + "/_emulator/inbound", json=...)
        ...  # stack.env holds what the children got; stack.wait() returns a crashed child
    """

    def __init__(self, config: StackConfig) -> None:
        unknown = set(config.services or ()) - {p.name for p in config.processes}
        if unknown:
            raise ValueError(f"unknown service(s): {', '.join(sorted(unknown))}")
        self.config = config
        self.processes = [
            p for p in config.processes if config.services is None or p.name in config.services
        ]
        self.env: dict[str, str] = {}
        self.notices: list[str] = []
        self.infra: Infra | None = None
        self._infra_task: asyncio.Future[Infra] | None = None
        self._children: list[_Child] = []
        self._lifeline: Lifeline | None = None
        self._stopping = False
        self._exit: tuple[str, int] | None = None
        self._exited = asyncio.Event()
        names = [p.name for p in self.processes] + ["stack"]
        self._sink = config.log_sink or PrefixedPrinter(names)

    def url(self, name: str) -> str:
        """Base URL of a started process, e.g. `http://127.0.0.1:8080`."""
        return f"http://127.0.0.1:{self.port(name)}"

    def port(self, name: str) -> int:
        """HTTP port of a started process."""
        for child in self._children:
            if child.spec.name == name:
                return child.port
        raise KeyError(f"{name} is not running in this stack")

    @property
    def pids(self) -> dict[str, int]:
        """Process id (= process group id) of every started child."""
        return {c.spec.name: c.proc.pid for c in self._children}

    def say(self, text: str) -> None:
        """Log the supervisor's own message, one sink call per line."""
        for line in text.splitlines():
            self._sink("stack", line)

    async def start(self) -> None:
        """Find infrastructure, migrate, then start the stages one after another."""
        self.env, self.notices = build_env(self.config)
        for notice in self.notices:
            self.say(notice)
        if self.config.infra:
            await self._ensure_infra()
        self._lifeline = Lifeline(self.config.stop_timeout)
        if self.config.migrate:
            for spec in self.processes:
                if spec.migrate_argv:
                    await self._migrate(spec)
        if not self.config.spawn:
            return
        for stage in sorted({p.stage for p in self.processes}):
            group = [p for p in self.processes if p.stage == stage]
            children = [await self._spawn(spec) for spec in group]
            waits = [asyncio.create_task(self._wait_ready(c)) for c in children]
            try:
                await asyncio.gather(*waits)
            finally:
                for task in waits:
                    task.cancel()

    async def _ensure_infra(self) -> None:
        explicit_db = bool(self.env.get("DATABASE_URL"))
        # Shielded: if start() is cancelled, stop() still gets the servers to stop them.
        self._infra_task = asyncio.ensure_future(
            asyncio.to_thread(ensure_infra, self.config.data_dir, env=self.env)
        )
        self.infra = infra = await asyncio.shield(self._infra_task)
        self.env["REDIS_URL"] = infra.redis_url
        if not explicit_db:
            await asyncio.to_thread(create_database, infra.database_url, APP_DATABASE)
            self.env["DATABASE_URL"] = url_for_database(infra.database_url, APP_DATABASE)
        self.say(f"PostgreSQL ({infra.postgres_source}): {self.env['DATABASE_URL']}")
        self.say(f"Redis ({infra.redis_source}): {infra.redis_url}")

    async def _exec(self, argv: Sequence[str]) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            _resolve(argv[0], self.env),
            *argv[1:],
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # own group: terminal Ctrl-C reaches only the supervisor
            limit=1 << 20,
        )
        assert self._lifeline is not None
        self._lifeline.guard(proc.pid, signal.SIGTERM)
        return proc

    async def _migrate(self, spec: ProcessSpec) -> None:
        assert spec.migrate_argv is not None
        command = " ".join(spec.migrate_argv)
        self.say(f"migrating {spec.name}: {command}")
        proc = await self._exec(spec.migrate_argv)
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        try:
            await self._pump(spec.name, proc, tail)
            code = await proc.wait()
        finally:
            await self._terminate(spec.name, proc)
        if code != 0:
            raise StackError(
                f"migration of {spec.name} failed: `{command}` exited with {code}; "
                f"its last output:\n{_indent(tail)}"
            )

    async def _spawn(self, spec: ProcessSpec) -> _Child:
        port = int(self.env[spec.port_env])
        if not _port_is_free(port):
            raise StackError(
                f"{spec.name}: port {port} is already in use; stop what listens there "
                f"or set {spec.port_env}"
            )
        self.say(f"starting {spec.name} on port {port}: {' '.join(spec.argv)}")
        proc = await self._exec(spec.argv)
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        child = _Child(
            spec, port, proc, tail, asyncio.create_task(self._pump(spec.name, proc, tail))
        )
        child.watch = asyncio.create_task(self._watch(child))
        self._children.append(child)
        return child

    async def _pump(self, name: str, proc: asyncio.subprocess.Process, tail: deque[str]) -> None:
        assert proc.stdout is not None
        while True:
            try:
                raw = await proc.stdout.readline()
            except ValueError:  # one line over the 1 MiB limit: asyncio dropped it
                raw = b"[line too long, dropped]\n"
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            tail.append(line)
            self._sink(name, line)

    async def _watch(self, child: _Child) -> None:
        code = await child.proc.wait()
        await asyncio.wait({child.pump}, timeout=1.0)  # let its last lines through
        if not self._stopping and self._exit is None:
            self._exit = (child.spec.name, code)
            self.say(f"{child.spec.name} exited with code {code}")
            self._exited.set()

    async def _wait_ready(self, child: _Child) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        url = f"http://127.0.0.1:{child.port}/health"
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:  # no proxies
            while True:
                if child.watch is not None and child.watch.done():
                    reason = f"exited with code {child.proc.returncode} before it was ready"
                    raise StackError(_failure(child, reason))
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        elapsed = loop.time() - started
                        self.say(f"{child.spec.name} is ready at {url} ({elapsed:.1f}s)")
                        return
                if loop.time() - started > self.config.ready_timeout:
                    reason = f"did not answer 200 on {url} within {self.config.ready_timeout:.0f}s"
                    raise StackError(_failure(child, reason))
                await asyncio.sleep(0.1)

    async def wait(self) -> tuple[str, int]:
        """Wait until a child exits on its own; its name and exit code."""
        await self._exited.wait()
        assert self._exit is not None
        return self._exit

    def kill(self) -> None:
        """SIGKILL every child's process group now (a second Ctrl-C)."""
        for child in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, signal.SIGKILL)

    async def stop(self) -> None:
        """Stop the stages in reverse order, then the embedded servers."""
        self._stopping = True
        for stage in sorted({c.spec.stage for c in self._children}, reverse=True):
            group = [c for c in reversed(self._children) if c.spec.stage == stage]
            await asyncio.gather(*(self._stop_child(c) for c in group))
        if self._lifeline is not None:
            await asyncio.to_thread(self._lifeline.close)
            self._lifeline = None
        if self._infra_task is not None:
            with contextlib.suppress(Exception):
                self.infra = await self._infra_task
            self._infra_task = None
        if self.infra is not None:
            await asyncio.to_thread(self.infra.stop)

    async def _stop_child(self, child: _Child) -> None:
        if child.proc.returncode is None:
            self.say(f"stopping {child.spec.name}")
        await self._terminate(child.spec.name, child.proc)
        if child.watch is not None:
            await asyncio.wait({child.watch}, timeout=2.0)
        child.pump.cancel()

    async def _terminate(self, name: str, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM the process group, SIGKILL it after `stop_timeout`, and reap it."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.config.stop_timeout)
            except TimeoutError:
                self.say(f"{name} ignored SIGTERM for {self.config.stop_timeout:.0f}s: killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever else is left in its group
        await proc.wait()
        if self._lifeline is not None:
            self._lifeline.release(proc.pid)

    async def __aenter__(self) -> Stack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


@contextlib.asynccontextmanager
async def start_stack(
    env_overrides: Mapping[str, str],
    data_dir: Path,
    *,
    services: Collection[str] | None = None,
    log_sink: LogSink | None = None,
    free_ports: bool = True,
) -> AsyncIterator[Stack]:
    """Start a stack for a test (free ports unless given, no `.env`), stop it on exit."""
    config = StackConfig(
        env=env_overrides,
        data_dir=data_dir,
        services=services,
        log_sink=log_sink,
        free_ports=free_ports,
    )
    async with Stack(config) as stack:
        yield stack


def _resolve(command: str, env: Mapping[str, str]) -> str:
    if os.sep in command:
        return command
    beside = Path(sys.executable).parent / command
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(command, path=env.get("PATH"))
    if found is None:
        raise StackError(f"`{command}` not found: is the workspace installed (uv sync --frozen)?")
    return found


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _failure(child: _Child, reason: str) -> str:
    return f"{child.spec.name} {reason}; its last output:\n{_indent(child.tail)}"


def _indent(lines: Iterable[str]) -> str:
    return "\n".join(f"    {line}" for line in lines) or "    (no output)"


async def serve(config: StackConfig) -> int:
    """Run a stack in the foreground until Ctrl-C/SIGTERM (0) or a failure (1)."""
    stack = Stack(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    first_signal: list[float] = []

    def on_signal() -> None:
        # `uv run` delivers one Ctrl-C twice, ~0.2 s apart: only a later one means "hurry up".
        if first_signal and loop.time() - first_signal[0] > 1.0:
            stack.say("interrupted again: killing everything")
            stack.kill()
        first_signal[:1] = first_signal[:1] or [loop.time()]
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    stopper = asyncio.create_task(stop.wait())
    code = 0
    try:
        starting = asyncio.create_task(stack.start())
        await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        elif (error := starting.exception()) is not None:
            stack.say(f"ERROR: {error}")
            code = 1
        if code == 0 and not stop.is_set():
            stack.say(
                "all up: " + ", ".join(f"{p.name} {stack.url(p.name)}" for p in stack.processes)
            )
            for notice in stack.notices:  # again: the start-up logs have scrolled it away
                stack.say(notice)
            stack.say("press Ctrl-C to stop")
            exited = asyncio.create_task(stack.wait())
            await asyncio.wait({exited, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if exited.done():
                name, status = exited.result()
                stack.say(f"ERROR: {name} exited unexpectedly (code {status}); stopping the stack")
                code = 1
            exited.cancel()
    finally:
        stack.say("stopping")
        await stack.stop()
        stopper.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    stack.say("stopped")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """`baton-dev run`: start the whole stack in the foreground; Ctrl-C stops it."""
    parser = argparse.ArgumentParser(prog="baton-dev run", description=main.__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument("--env-file", type=Path, default=Path(".env"))
    parser.add_argument("--only", help="comma-separated process names to start (default: all)")
    parser.add_argument(
        "--migrate-only", action="store_true", help="find the databases, migrate, and exit"
    )
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    unknown = set(only or ()) - {spec.name for spec in PROCESSES}
    if unknown:
        parser.error(f"unknown process(es) {', '.join(sorted(unknown))}")
    config = StackConfig(
        data_dir=args.data_dir, env_file=args.env_file, services=only, spawn=not args.migrate_only
    )
    if args.migrate_only:
        return asyncio.run(_migrate_only(config))
    return asyncio.run(serve(config))


async def _migrate_only(config: StackConfig) -> int:
    """`make migrate`: every schema up to date, then stop (embedded servers included)."""
    async with Stack(config) as stack:
        stack.say("every schema is up to date")
    return 0
