"""A running stack: infrastructure, migrations, then the processes in readiness-gated stages,
their output merged into one log stream, and a clean stop (no orphans, even if we are killed)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections import deque
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from baton_devtools.infra import (
    Infra,
    Lifeline,
    create_database,
    ensure_infra,
    url_for_database,
)
from baton_devtools.stack_env import (
    APP_DATABASE,
    TAIL_LINES,
    LogSink,
    PrefixedPrinter,
    ProcessSpec,
    StackConfig,
    StackError,
    build_env,
)
from baton_shared.priority import MAX_NICENESS


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
        unknown = set(config.nice) - {p.name for p in config.processes}
        if unknown:
            raise ValueError(f"nice: unknown process(es): {', '.join(sorted(unknown))}")
        bad = {name: n for name, n in config.nice.items() if not 0 <= n <= MAX_NICENESS}
        if bad:
            raise ValueError(f"nice: niceness must be within 0..{MAX_NICENESS}: {bad}")
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

    async def _exec(
        self, argv: Sequence[str], extra_env: Mapping[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            _resolve(argv[0], self.env),
            *argv[1:],
            env={**self.env, **extra_env} if extra_env else self.env,
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
        niceness = self.config.nice.get(spec.name)
        extra_env = {"BATON_NICE": str(niceness)} if niceness is not None else None
        at = f" at niceness {niceness}" if niceness is not None else ""
        self.say(f"starting {spec.name} on port {port}{at}: {' '.join(spec.argv)}")
        proc = await self._exec(spec.argv, extra_env)
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
    nice: Mapping[str, int] | None = None,
) -> AsyncIterator[Stack]:
    """Start a stack for a test (free ports unless given, no `.env`), stop it on exit;
    `nice` runs the named processes at that CPU niceness (`StackConfig.nice`)."""
    config = StackConfig(
        env=env_overrides,
        data_dir=data_dir,
        services=services,
        log_sink=log_sink,
        free_ports=free_ports,
        nice=nice or {},
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
