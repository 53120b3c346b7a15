"""The `make run` supervisor, driven with stand-in children that serve /health."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from baton_devtools.supervisor import (
    GEMINI_BANNER,
    PrefixedPrinter,
    ProcessSpec,
    Stack,
    StackConfig,
    StackError,
    build_env,
    read_env_file,
)

# A stand-in service: serves /health on the port in $PORT_ENV; behaviour picked by flags.
#   gated: /health answers 503 until something GETs /open
#   exit-now: exits with code 3 at once
#   ignore-term: ignores SIGTERM (the supervisor must SIGKILL it)
#   grandchild: starts a child that ignores SIGTERM (the group SIGKILL must reach it)
# GET /crash makes it exit with code 4.
STANDIN = r"""
import http.server, os, signal, subprocess, sys, threading
name, port_env, *flags = sys.argv[1:]
print(f"{name} pid={os.getpid()}", flush=True)
print(f"{name} says hello on stderr", file=sys.stderr, flush=True)
if "exit-now" in flags:
    print(f"{name}: boom, cannot start", file=sys.stderr, flush=True)
    sys.exit(3)
if "grandchild" in flags:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    print(f"{name} grandchild pid={subprocess.Popen([sys.executable, '-c', code]).pid}", flush=True)
opened = threading.Event()
if "gated" not in flags:
    opened.set()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/crash":
            os._exit(4)
        if self.path == "/open":
            opened.set()
        if self.path == "/health" and not opened.is_set():
            print(f"{name} not ready yet", flush=True)
        self.send_response(200 if opened.is_set() else 503)
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ[port_env])), Handler)

def on_term(*_):
    print(f"{name} got SIGTERM", flush=True)
    if "ignore-term" not in flags:
        threading.Thread(target=server.shutdown).start()

signal.signal(signal.SIGTERM, on_term)
print(f"{name} listening", flush=True)
server.serve_forever()
print(f"{name} stopped", flush=True)
"""

# Runs `serve()` over a JSON list of stand-in specs, as `baton-dev run` would.
HARNESS = r"""
import asyncio, json, sys
from pathlib import Path
from typing import Any
from baton_devtools.supervisor import ProcessSpec, StackConfig, serve
specs = [ProcessSpec(**{**s, "argv": tuple(s["argv"])}) for s in json.loads(sys.argv[1])]
config = StackConfig(processes=specs, infra=False, migrate=False, free_ports=True,
                     stop_timeout=float(sys.argv[2]), data_dir=Path("."))
sys.exit(asyncio.run(serve(config)))
"""


@pytest.fixture
def standin(tmp_path: Path) -> Callable[..., ProcessSpec]:
    """Factory for a stand-in ProcessSpec: standin(name, stage, *flags)."""
    script = tmp_path / "standin.py"
    script.write_text(STANDIN)

    def make(name: str, stage: int, *flags: str) -> ProcessSpec:
        port_env = f"{name.upper()}_PORT"
        argv = (sys.executable, str(script), name, port_env, *flags)
        return ProcessSpec(name, argv, port_env, 0, stage)

    return make


class Recorder:
    """Log sink that remembers every line and lets a test wait for one."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def __call__(self, name: str, line: str) -> None:
        self.lines.append((name, line))
        self._changed.set()

    def has(self, name: str, text: str) -> bool:
        return any(n == name and text in line for n, line in self.lines)

    def index(self, name: str, text: str) -> int:
        return next(i for i, (n, line) in enumerate(self.lines) if n == name and text in line)

    async def wait_for(self, name: str, text: str) -> None:
        """Return once `name` logged a line containing `text` (callers bound the wait)."""
        while not self.has(name, text):
            self._changed.clear()
            await self._changed.wait()


def config_for(*specs: ProcessSpec, sink: Callable[[str, str], None], **kw: Any) -> StackConfig:
    """Stand-ins only: no infrastructure, no migrations, free ports."""
    base = StackConfig(
        processes=specs,
        log_sink=sink,
        infra=False,
        migrate=False,
        free_ports=True,
        stop_timeout=5.0,
        base_env=dict(os.environ),
    )
    return replace(base, **kw)


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (local URL)
        return int(response.status)


def crash(base_url: str) -> None:
    """Ask a stand-in to exit with code 4 (the connection drops without an answer)."""
    with contextlib.suppress(OSError):
        get(base_url + "/crash")


# ---- environment -----------------------------------------------------------------------


def test_env_points_at_the_emulators_when_nothing_is_configured() -> None:
    env, notices = build_env(StackConfig(base_env={"PATH": "/bin"}))
    assert env["GOOGLE_API_KEY"] == "emulator"
    assert env["GEMINI_BASE_URL"] == "http://127.0.0.1:8091"
    assert env["WA_GRAPH_URL"] == "http://127.0.0.1:8090"
    assert env["WA_APP_SECRET"].startswith("dev-")
    assert env["WA_ACCESS_TOKEN"].startswith("dev-")
    assert env["WA_VERIFY_TOKEN"].startswith("dev-")
    assert env["INGRESS_WEBHOOK_URL"] == "http://127.0.0.1:8080/webhook"
    assert env["BATON_ENV"] == "development"
    assert (env["INGRESS_PORT"], env["SENDER_PORT"], env["WA_EMULATOR_PORT"]) == (
        "8080",
        "8084",
        "8090",
    )
    assert notices == [GEMINI_BANNER.format(url="http://127.0.0.1:8091")]


def test_env_keeps_what_the_user_configured(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("WA_APP_SECRET=from-file\nINGRESS_PORT=7000\nBATON_ENV=test\n")
    base = {"GOOGLE_API_KEY": "real-key", "WA_GRAPH_URL": "https://graph.example", "X": "1"}
    config = StackConfig(base_env=base, env_file=env_file, env={"INGRESS_PORT": "9999"})
    env, notices = build_env(config)
    assert notices == []
    assert "GEMINI_BASE_URL" not in env
    assert env["GOOGLE_API_KEY"] == "real-key"
    assert env["WA_GRAPH_URL"] == "https://graph.example"
    assert env["WA_APP_SECRET"] == "from-file"
    assert "WA_ACCESS_TOKEN" not in env
    assert env["INGRESS_PORT"] == "9999"
    assert env["INGRESS_WEBHOOK_URL"] == "http://127.0.0.1:9999/webhook"
    assert env["BATON_ENV"] == "test"


def test_the_emulator_approves_the_templates_the_operator_api_knows() -> None:
    base = {"OPERATOR_API_TEMPLATES_FILE": "/etc/baton/templates.yaml"}
    env, _ = build_env(StackConfig(base_env=base))
    assert env["WA_EMULATOR_TEMPLATES_FILE"] == "/etc/baton/templates.yaml"
    env, _ = build_env(StackConfig(base_env={"PATH": "/bin"}))
    assert "WA_EMULATOR_TEMPLATES_FILE" not in env  # its built-in ones


def test_env_file_values_never_override_the_environment(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("GOOGLE_API_KEY=from-file\n")
    env, _ = build_env(StackConfig(base_env={"GOOGLE_API_KEY": "from-shell"}, env_file=env_file))
    assert env["GOOGLE_API_KEY"] == "from-shell"


def test_free_ports_are_distinct_unless_set() -> None:
    env, _ = build_env(StackConfig(base_env={"AGENT_PORT": "8123"}, free_ports=True))
    ports = [env[name] for name in ("INGRESS_PORT", "OPERATOR_API_PORT", "BUFFER_PORT")]
    assert env["AGENT_PORT"] == "8123"
    assert "8080" not in ports


def test_read_env_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# comment\n\nA=1\nexport B = two \nC='quoted # not a comment'\n"
        'D="x=y"\nE=value # comment\nnot a pair\n'
    )
    assert read_env_file(path) == {
        "A": "1",
        "B": "two",
        "C": "quoted # not a comment",
        "D": "x=y",
        "E": "value",
    }
    assert read_env_file(tmp_path / "missing") == {}


def test_prefixed_printer_pads_names_and_colours_only_when_asked() -> None:
    plain, coloured = io.StringIO(), io.StringIO()
    PrefixedPrinter(["ingress", "gemini-emulator"], plain)("ingress", "hello")
    PrefixedPrinter(["ingress", "gemini-emulator"], coloured, colour=True)("ingress", "hello")
    assert plain.getvalue() == "ingress         | hello\n"
    assert coloured.getvalue().startswith("\x1b[36mingress         |\x1b[0m hello")


def test_unknown_service_is_refused(standin: Callable[..., ProcessSpec]) -> None:
    with pytest.raises(ValueError, match="nope"):
        Stack(StackConfig(processes=[standin("a", 0)], services=["nope"]))


@pytest.mark.parametrize(
    ("nice", "message"), [({"nope": 5}, "unknown process"), ({"a": 20}, "within 0..19")]
)
def test_bad_niceness_is_refused(
    standin: Callable[..., ProcessSpec], nice: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Stack(StackConfig(processes=[standin("a", 0)], nice=nice))


# ---- starting ---------------------------------------------------------------------------


async def test_a_stage_starts_only_when_the_previous_one_is_healthy(
    standin: Callable[..., ProcessSpec],
) -> None:
    log = Recorder()
    stack = Stack(config_for(standin("a", 0, "gated"), standin("b", 1), sink=log))
    starting = asyncio.create_task(stack.start())
    try:
        async with asyncio.timeout(20):
            await log.wait_for("a", "not ready yet")  # the supervisor polls a's /health
        assert not log.has("stack", "starting b")
        assert not starting.done()
        await asyncio.to_thread(get, stack.url("a") + "/open")
        await asyncio.wait_for(starting, 20)
        assert log.index("stack", "a is ready") < log.index("stack", "starting b")
        assert await asyncio.to_thread(get, stack.url("b") + "/health") == 200
    finally:
        starting.cancel()
        await stack.stop()


async def test_output_of_every_child_is_one_prefixed_stream(
    standin: Callable[..., ProcessSpec],
) -> None:
    out = io.StringIO()
    specs = (standin("a", 0), standin("bee", 0))
    printer = PrefixedPrinter(["a", "bee", "stack"], out)
    async with Stack(config_for(*specs, sink=printer)) as stack:
        assert set(stack.pids) == {"a", "bee"}
    lines = out.getvalue().splitlines()
    assert "a     | a says hello on stderr" in lines
    assert "bee   | bee listening" in lines
    assert "bee   | bee got SIGTERM" in lines
    assert any(line.startswith("stack | bee is ready at http://127.0.0.1:") for line in lines)


async def test_a_niced_process_gets_baton_nice_and_the_others_do_not(
    standin: Callable[..., ProcessSpec],
) -> None:
    log = Recorder()
    specs = (standin("a", 0), standin("b", 0))
    async with Stack(config_for(*specs, sink=log, nice={"b": 7})) as stack:
        environ = {name: _environ(pid) for name, pid in stack.pids.items()}
    assert b"BATON_NICE=7" in environ["b"]
    assert not any(entry.startswith(b"BATON_NICE=") for entry in environ["a"])
    assert log.has("stack", "at niceness 7")


def _environ(pid: int) -> list[bytes]:
    """The environment a process was started with (Linux)."""
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


async def test_a_child_that_dies_before_it_is_ready_fails_start_with_its_output(
    standin: Callable[..., ProcessSpec],
) -> None:
    log = Recorder()
    stack = Stack(config_for(standin("a", 0), standin("b", 0, "exit-now"), sink=log))
    with pytest.raises(StackError, match="b exited with code 3 before it was ready") as error:
        async with stack:
            pass
    assert "b: boom, cannot start" in str(error.value)
    assert not any(alive(pid) for pid in stack.pids.values())


async def test_a_child_that_never_gets_healthy_times_out(
    standin: Callable[..., ProcessSpec],
) -> None:
    stack = Stack(config_for(standin("a", 0, "gated"), sink=Recorder(), ready_timeout=0.5))
    with pytest.raises(StackError, match=r"a did not answer 200 on .*/health within"):
        async with stack:
            pass
    assert not any(alive(pid) for pid in stack.pids.values())


async def test_migrations_run_first_and_a_failing_one_stops_start(
    standin: Callable[..., ProcessSpec],
) -> None:
    ok = (sys.executable, "-c", "print('a migrated')")
    bad = (sys.executable, "-c", "import sys; print('no such table'); sys.exit(2)")
    a = ProcessSpec(**{**standin("a", 0).__dict__, "migrate_argv": ok})
    b = ProcessSpec(**{**standin("b", 0).__dict__, "migrate_argv": bad})
    log = Recorder()
    stack = Stack(config_for(a, b, sink=log, migrate=True))
    with pytest.raises(StackError, match="migration of b failed") as error:
        async with stack:
            pass
    assert "exited with 2" in str(error.value)
    assert "no such table" in str(error.value)
    assert log.has("a", "a migrated")
    assert stack.pids == {}  # nothing was started


async def test_a_port_in_use_is_refused_with_its_variable(
    standin: Callable[..., ProcessSpec],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = config_for(standin("a", 0), sink=Recorder(), env={"A_PORT": str(port)})
        with pytest.raises(StackError, match=f"port {port} is already in use.*A_PORT"):
            async with Stack(config):
                pass


async def test_wait_reports_a_child_that_exits_on_its_own(
    standin: Callable[..., ProcessSpec],
) -> None:
    async with Stack(config_for(standin("a", 0), standin("b", 1), sink=Recorder())) as stack:
        await asyncio.to_thread(crash, stack.url("b"))
        assert await asyncio.wait_for(stack.wait(), 20) == ("b", 4)


# ---- the foreground process: signals, crashes, being killed -----------------------------


class Harness:
    """`serve()` in a subprocess, with its output collected line by line."""

    def __init__(self, specs: list[ProcessSpec], tmp_path: Path, stop_timeout: float = 5.0):
        script = tmp_path / "harness.py"
        script.write_text(HARNESS)
        payload = json.dumps([spec.__dict__ for spec in specs])
        self.proc = subprocess.Popen(
            [sys.executable, str(script), payload, str(stop_timeout)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((line for line in self.lines if text in line), None), timeout
            )
        if found is None:
            raise AssertionError(f"{text!r} not seen; output:\n" + "\n".join(self.lines))
        return found

    def pids(self) -> list[int]:
        return [int(line.rsplit("pid=", 1)[1]) for line in self.lines if "pid=" in line]

    def index(self, text: str) -> int:
        return next(i for i, line in enumerate(self.lines) if text in line)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    started: list[Harness] = []

    def start(specs: list[ProcessSpec], stop_timeout: float = 5.0) -> Harness:
        started.append(Harness(specs, tmp_path, stop_timeout))
        return started[-1]

    yield start
    for h in started:
        if h.proc.poll() is None:
            h.proc.kill()
            h.proc.wait()


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGINT], [signal.SIGINT, signal.SIGINT], [signal.SIGTERM]],
    ids=["ctrl-c", "ctrl-c-doubled-by-uv-run", "sigterm"],
)
def test_a_signal_stops_children_in_reverse_order_and_leaves_no_orphans(
    signals: list[signal.Signals],
    standin: Callable[..., ProcessSpec],
    harness: Callable[..., Harness],
) -> None:
    specs = [standin("a", 0), standin("b", 1, "grandchild"), standin("c", 1, "ignore-term")]
    run = harness(specs, stop_timeout=1.0)
    run.wait_for("all up")
    run.wait_for("grandchild pid=")
    pids = run.pids()
    assert len(pids) == 4
    for sig in signals:
        run.proc.send_signal(sig)
    assert run.proc.wait(30) == 0
    run.wait_for("stack | stopped")
    assert run.index("b got SIGTERM") < run.index("a got SIGTERM")
    assert run.index("c got SIGTERM") < run.index("a got SIGTERM")
    run.wait_for("c ignored SIGTERM for 1s: killing it")
    wait_until(lambda: not any(alive(pid) for pid in pids))


def test_a_later_second_ctrl_c_kills_at_once(
    standin: Callable[..., ProcessSpec],
    harness: Callable[..., Harness],
) -> None:
    run = harness([standin("a", 0, "ignore-term")], stop_timeout=60.0)
    run.wait_for("all up")
    pids = run.pids()
    run.proc.send_signal(signal.SIGINT)
    run.wait_for("a got SIGTERM")
    time.sleep(1.1)  # past the 1 s window in which a repeat counts as the same Ctrl-C
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(30) == 0  # well before the 60 s grace period
    run.wait_for("interrupted again: killing everything")
    wait_until(lambda: not any(alive(pid) for pid in pids))


def test_a_crashing_child_stops_the_stack(
    standin: Callable[..., ProcessSpec],
    harness: Callable[..., Harness],
) -> None:
    run = harness([standin("a", 0), standin("b", 1)])
    run.wait_for("all up")
    port = int(run.wait_for("starting b on port").split("port ")[1].split(":")[0])
    crash(f"http://127.0.0.1:{port}")
    assert run.proc.wait(30) == 1
    run.wait_for("ERROR: b exited unexpectedly (code 4)")
    run.wait_for("a got SIGTERM")
    wait_until(lambda: not any(alive(pid) for pid in run.pids()))


def test_a_killed_supervisor_leaves_no_orphans(
    standin: Callable[..., ProcessSpec],
    harness: Callable[..., Harness],
) -> None:
    run = harness([standin("a", 0), standin("b", 1, "grandchild")], stop_timeout=1.0)
    run.wait_for("all up")
    run.wait_for("grandchild pid=")
    pids = run.pids()
    run.proc.kill()  # no chance to clean up: the lifeline watchdog must
    run.proc.wait()
    wait_until(lambda: not any(alive(pid) for pid in pids))
