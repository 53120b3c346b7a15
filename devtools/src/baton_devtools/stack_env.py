"""What a stack is made of: the process table, how a stack is configured, and the environment
its children get (ports, development doubles, `.env`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from baton_devtools.infra import (
    free_port,
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
        nice: CPU niceness (0..19) of some processes by name, passed to each as `BATON_NICE`;
            e.g. every process but ingress, so that its request path keeps its CPU while the
            background work saturates the machine.
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
    nice: Mapping[str, int] = field(default_factory=dict)


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
        # The business's approved templates, as the operator API knows them, are the ones
        # the emulator approves (else it refuses them with 132001, as WhatsApp would).
        if env.get("OPERATOR_API_TEMPLATES_FILE"):
            env.setdefault("WA_EMULATOR_TEMPLATES_FILE", env["OPERATOR_API_TEMPLATES_FILE"])
    env.setdefault("INGRESS_WEBHOOK_URL", local("INGRESS_PORT") + "/webhook")
    return env, notices
