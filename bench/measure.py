"""Measurements every benchmark takes: percentiles, a process's CPU time, the machine's,
and a description of the machine with a speed probe (figures from different machines differ
by as much as 3x: compare the probe before comparing figures)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from baton_devtools import infra as infra_mod
from baton_devtools.databases import private_database

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def infra_and_database() -> Iterator[tuple[str, str]]:
    """PostgreSQL and Redis (the machine's, else embedded ones started here and stopped at the
    end) and a private database on them: (its URL, Redis's URL)."""
    found = infra_mod.ensure_infra(ROOT / ".data" / "bench-infra")
    try:
        with private_database(found.database_url, prefix="baton_bench") as url:
            yield url, found.redis_url
    finally:
        found.stop()


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` has used so far (Linux /proc; 0.0 if gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy (not idle or waiting on I/O)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    """The processor's model name (Linux /proc/cpuinfo), or the architecture."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def speed_probe() -> tuple[float, float]:
    """Milliseconds of two fixed workloads, to compare figures taken on different machines:
    20,000 JSON round trips of a webhook-sized document (CPU-bound, cache-resident) and
    1,000,000 random reads of a 500,000-key dict (memory-latency-bound, as an interpreter
    walking large object graphs is). Best of three each."""
    document = {
        "entry": [
            {"id": str(n), "changes": [{"value": {"text": {"body": "hello " * 20}}}]}
            for n in range(4)
        ]
    }
    table = {f"key-{n}": n for n in range(500_000)}
    keys = list(table)
    random.Random(7).shuffle(keys)
    reads = keys * 2

    def json_trips() -> None:
        for _ in range(20_000):
            json.loads(json.dumps(document))

    def dict_reads() -> None:
        get = table.__getitem__
        for key in reads:
            get(key)

    def best(work: Callable[[], None]) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        return min(times) * 1000

    return best(json_trips), best(dict_reads)


def machine_line() -> str:
    """Date, machine, load and the speed probe, for a benchmark's header."""
    json_ms, dict_ms = speed_probe()
    return (
        f"  date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {cpu_model()}, "
        f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; speed probe: "
        f"{json_ms:.0f} ms of JSON round trips, {dict_ms:.0f} ms of random dict reads "
        "(bench/measure.py speed_probe; lower is faster)"
    )
