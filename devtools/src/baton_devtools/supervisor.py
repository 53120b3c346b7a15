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
import signal
from collections.abc import Sequence
from pathlib import Path

from baton_devtools.stack import Stack, start_stack
from baton_devtools.stack_env import (
    APP_DATABASE,
    DEFAULT_PORTS,
    DEV_WA_SECRETS,
    GEMINI_BANNER,
    PROCESSES,
    TAIL_LINES,
    LogSink,
    PrefixedPrinter,
    ProcessSpec,
    StackConfig,
    StackError,
    build_env,
    read_env_file,
)

# The supervisor is the public face of the stack machinery: tests and benchmarks import from here.
__all__ = [
    "APP_DATABASE",
    "DEFAULT_PORTS",
    "DEV_WA_SECRETS",
    "GEMINI_BANNER",
    "PROCESSES",
    "TAIL_LINES",
    "LogSink",
    "PrefixedPrinter",
    "ProcessSpec",
    "Stack",
    "StackConfig",
    "StackError",
    "build_env",
    "main",
    "read_env_file",
    "serve",
    "start_stack",
]


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
