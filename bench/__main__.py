"""`make bench`: run every benchmark and print its figures.

`python -m bench` runs them all; `python -m bench <name> [args...]` runs only `<name>`.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable
from typing import Any

from bench import (
    agent_floor,
    agent_turns,
    buffer_floor,
    buffer_release,
    e2e_latency,
    ingress_webhook,
    sender_throughput,
)

# name -> `main(argv)` (sync or async); one line per benchmark
BENCHMARKS: dict[str, Callable[[list[str]], Any]] = {
    "e2e_latency": e2e_latency.main,
    "buffer_release": buffer_release.main,
    "buffer_floor": buffer_floor.main,
    "ingress_webhook": ingress_webhook.main,
    "sender_throughput": sender_throughput.main,
    "agent_turns": agent_turns.main,
    "agent_floor": agent_floor.main,
}


def _run(bench: Callable[[list[str]], Any], argv: list[str]) -> None:
    result = bench(argv)
    if inspect.isawaitable(result):
        asyncio.run(result)  # type: ignore[arg-type]


def main() -> int:
    """Run the named benchmark, or every benchmark in turn."""
    argv = sys.argv[1:]
    if argv and argv[0] in BENCHMARKS:
        _run(BENCHMARKS[argv[0]], argv[1:])
        return 0
    if argv and not argv[0].startswith("-"):
        print(f"unknown benchmark {argv[0]!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name, bench in BENCHMARKS.items():
        print(f"== {name}")
        _run(bench, argv if name == "e2e_latency" else [])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
