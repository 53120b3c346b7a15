"""Agent throughput: 1,000 conversations each sending one turn, the model answering in 2 s.

The agent runs as `baton-agent serve` (its own process, as in production) against a private
database and Redis prefix, its model the Gemini emulator (another process) with every answer
delayed by `--delay-ms`. The benchmark publishes `--turns` TurnReady events (one per new
conversation) straight onto `conv.turns`, then reads `conv.turns.done` until every turn is
completed. It reports turns completed per second (first publish -> last completion), the
latency of a turn (publish -> completion), the agent's CPU time per turn, and its peak RSS.
`--replicas N` runs N agent processes in the one consumer group (as several replicas would
run in production; one process uses one core). `--repeat N` measures N rounds on the same
processes, each with fresh conversations, and reports the median round (this machine's speed
drifts by 15 % from minute to minute).

With 2 s per answer the ceiling is `concurrency / 2` turns/s, and 500/s for 1,000 turns
published at once (they all finish after one model call, 2 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from baton_devtools import infra as infra_mod
from baton_shared.events import (
    InboundMessage,
    MessageType,
    Turn,
    TurnCloseReason,
    TurnCompleted,
    TurnReady,
    conversation_id_for,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, entry_fields
from baton_shared.testing import delete_prefix, new_prefix
from bench.measure import (
    cpu_seconds,
    infra_and_database,
    machine_busy_seconds,
    machine_line,
    percentile,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PHONE_NUMBER_ID = "1000200030009"
COMPLETED = TurnCompleted.model_fields["event_type"].default


def make_turn(n: int) -> TurnReady:
    """The first turn of conversation `n`: one text message."""
    wa_id = f"4477{n:08d}"
    message = InboundMessage(
        message_id=f"wamid.bench.{uuid.uuid4().hex}",
        phone_number_id=PHONE_NUMBER_ID,
        wa_id=wa_id,
        timestamp=datetime.now(UTC),
        type=MessageType.TEXT,
        text=f"hello, this is customer {n}: what are your opening hours?",
    )
    turn = Turn(
        turn_id=uuid.uuid4(),
        phone_number_id=PHONE_NUMBER_ID,
        wa_id=wa_id,
        sequence=1,
        messages=[message],
        closed_by=TurnCloseReason.QUIET,
    )
    return TurnReady.create(
        turn, producer="bench", conversation_id=conversation_id_for(PHONE_NUMBER_ID, wa_id)
    )


@contextlib.asynccontextmanager
async def process(
    argv: list[str], env: dict[str, str], log: Path, *, wrapped: bool = False
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A child process (output to `log`), stopped and reaped on exit.

    `wrapped`: the child is py-spy running the real process, which is the one stopped
    (py-spy then writes its profile and exits).
    """
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *argv, env={**os.environ, **env}, stdout=sink, stderr=asyncio.subprocess.STDOUT
        )
        try:
            yield proc
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, OSError, IndexError):
                    os.kill(target_pid(proc, wrapped), signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), timeout=30)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError, OSError, IndexError):
                        os.kill(target_pid(proc, wrapped), signal.SIGKILL)
                    proc.kill()
                    await proc.wait()


async def wait_http(url: str, proc: asyncio.subprocess.Process, log: Path) -> None:
    """Wait until `url` answers 200 (60 s at most), failing early if the process died."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"{argv0(proc)} exited:\n{tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not answer:\n{tail(log)}")


def tail(log: Path) -> str:
    """The end of a child's log, for an error message."""
    return log.read_text()[-3000:]


def argv0(proc: asyncio.subprocess.Process) -> str:
    """How to name a child process in an error."""
    return f"process {proc.pid}"


@dataclass(frozen=True)
class Round:
    """One measured round: `turns` fresh conversations, one turn each."""

    seconds: float
    latencies: list[float]
    agent_cpu: float
    machine_cpu: float
    emulator_cpu: float
    own_cpu: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


async def measure(
    bus: Bus, pids: list[int], emulator_pid: int, turns: list[TurnReady], limit: float
) -> Round:
    """Drive `turns` (built beforehand) and take every process's CPU around it."""
    agent_before = sum(cpu_seconds(pid) for pid in pids)
    machine_before = machine_busy_seconds()
    emulator_before, own_before = cpu_seconds(emulator_pid), time.process_time()
    seconds, latencies = await drive(bus, turns, limit)
    return Round(
        seconds=seconds,
        latencies=latencies,
        agent_cpu=sum(cpu_seconds(pid) for pid in pids) - agent_before,
        machine_cpu=machine_busy_seconds() - machine_before,
        emulator_cpu=cpu_seconds(emulator_pid) - emulator_before,
        own_cpu=time.process_time() - own_before,
    )


def target_pid(proc: asyncio.subprocess.Process, wrapped: bool) -> int:
    """The agent's pid: the child itself, or the child of py-spy when profiled."""
    if not wrapped:
        return proc.pid
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return int(children[0])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of `pid`, in kB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


async def drive(bus: Bus, turns: list[TurnReady], limit: float) -> tuple[float, list[float]]:
    """Publish every turn, wait for all completions; (seconds overall, latency per turn)."""
    done_key = bus.key(names.CONV_TURNS_DONE)
    last_id = (await bus.redis.xinfo_stream(done_key))["last-generated-id"]
    published: dict[str, float] = {}
    latencies: list[float] = []
    # Serialised before the clock starts; appended 100 per round trip (as the buffer does).
    entries = [(turn.stream, str(turn.event_id), entry_fields(turn)) for turn in turns]
    start = time.perf_counter()
    for chunk in range(0, len(turns), 100):
        for turn in turns[chunk : chunk + 100]:
            published[str(turn.payload.turn_id)] = time.perf_counter()
        await bus.publish_many(entries[chunk : chunk + 100])
    finished = start
    while len(latencies) < len(turns):
        if time.perf_counter() - start > limit:
            raise TimeoutError(f"only {len(latencies)} of {len(turns)} turns completed")
        reply: Any = await bus.redis.xread({done_key: last_id}, count=500, block=1000)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                last_id = entry_id
                if fields.get("event_type") == COMPLETED:
                    # Only the turn id: a full parse would cost this script (sharing the
                    # agent's cores) a third of a millisecond per turn.
                    turn_id = orjson.loads(fields["body"])["payload"]["turn_id"]
                    sent = published.pop(turn_id, None)
                    if sent is not None:
                        finished = time.perf_counter()
                        latencies.append(finished - sent)
    return finished - start, latencies


async def main(argv: list[str]) -> None:
    """Start infra, the emulator and the agent; publish the turns; print the figures."""
    parser = argparse.ArgumentParser(prog="bench agent_turns", description=__doc__)
    parser.add_argument("--turns", type=int, default=1000, help="conversations, one turn each")
    parser.add_argument("--delay-ms", type=int, default=2000, help="model answer delay")
    parser.add_argument("--concurrency", type=int, default=1000, help="AGENT_CONCURRENCY")
    parser.add_argument("--warmup", type=int, default=20, help="turns before measuring")
    parser.add_argument("--timeout", type=float, default=300, help="give up after (s)")
    parser.add_argument("--replicas", type=int, default=1, help="agent processes")
    parser.add_argument(
        "--repeat", type=int, default=1, help="measured rounds (fresh conversations each)"
    )
    parser.add_argument("--py-spy", metavar="OUT", help="profile the agent with py-spy into OUT")
    args = parser.parse_args(argv)
    if args.py_spy and args.replicas != 1:
        parser.error("--py-spy profiles one agent: use --replicas 1")

    logs = ROOT / ".data" / "bench-agent"
    logs.mkdir(parents=True, exist_ok=True)
    prefix = new_prefix()
    with infra_and_database() as (url, redis_url):
        bus = Bus.from_url(redis_url, prefix=prefix)
        try:
            gemini_port = infra_mod.free_port()
            gemini = f"http://127.0.0.1:{gemini_port}"
            emulator_argv = [str(BIN / "baton-dev"), "gemini-emulator", "--port", str(gemini_port)]
            agent_env = {
                "BATON_ENV": "test",
                "DATABASE_URL": url,
                "REDIS_URL": redis_url,
                "REDIS_PREFIX": prefix,
                "GEMINI_BASE_URL": gemini,
                "GOOGLE_API_KEY": "bench",
                "AGENT_CONCURRENCY": str(args.concurrency),
                "LOG_LEVEL": "WARNING",
            }
            agent_argv = [str(BIN / "baton-agent"), "serve"]
            if args.py_spy:  # e.g. `uv run --with py-spy python -m bench agent_turns --py-spy x`
                spy = shutil.which("py-spy") or "py-spy"
                agent_argv = [spy, "record", "-f", "raw", "-o", args.py_spy, "--", *agent_argv]
            async with contextlib.AsyncExitStack() as stack:
                emulator = await stack.enter_async_context(
                    process(emulator_argv, {}, logs / "gemini.log")
                )
                await wait_http(f"{gemini}/_emulator/faults", emulator, logs / "gemini.log")
                agents = []
                for n in range(args.replicas):
                    port, log = infra_mod.free_port(), logs / f"agent-{n}.log"
                    env = {**agent_env, "AGENT_PORT": str(port)}
                    agent = await stack.enter_async_context(
                        process(agent_argv, env, log, wrapped=bool(args.py_spy))
                    )
                    await wait_http(f"http://127.0.0.1:{port}/health/ready", agent, log)
                    agents.append(agent)
                async with httpx.AsyncClient(base_url=gemini) as client:
                    fault = {"delay_ms": args.delay_ms}  # every call, no count
                    (await client.post("/_emulator/faults", json=fault)).raise_for_status()
                await bus.redis.xadd(bus.key(names.CONV_TURNS_DONE), {"bench": "start"})
                await drive(bus, [make_turn(10**7 + n) for n in range(args.warmup)], args.timeout)
                pids = [target_pid(agent, wrapped=bool(args.py_spy)) for agent in agents]
                before = [proc_status(pid) for pid in pids]
                rounds: list[Round] = []
                for r in range(args.repeat):
                    turns = [make_turn(r * args.turns + n) for n in range(args.turns)]
                    rounds.append(await measure(bus, pids, emulator.pid, turns, args.timeout))
                after = [proc_status(pid) for pid in pids]
        finally:
            await delete_prefix(bus.redis, prefix)
            await bus.aclose()

    print(
        f"agent throughput: {args.turns} conversations x 1 turn, model answers after "
        f"{args.delay_ms} ms, AGENT_CONCURRENCY={args.concurrency}, "
        f"{args.replicas} agent process(es)"
    )
    print(machine_line())
    ceiling = min(args.turns, args.concurrency * args.replicas) / (args.delay_ms / 1000)
    per_turn = 1000 / args.turns
    for n, one in enumerate(rounds, start=1):
        print(
            f"  round {n}: {one.rate:.1f} turns/s, agent CPU {one.agent_cpu * per_turn:.2f} ms "
            f"and machine {one.machine_cpu * per_turn:.2f} ms per turn"
        )
    ranked = sorted(rounds, key=lambda one: one.rate)
    middle = ranked[len(ranked) // 2]
    label = "median round" if len(rounds) > 1 else "round"
    print(
        f"  {label}: {middle.rate:.1f} turns/s ({args.turns} turns in {middle.seconds:.2f} s; "
        f"ceiling {ceiling:.0f}/s); all rounds {ranked[0].rate:.1f}-{ranked[-1].rate:.1f}"
    )
    ms = [s * 1000 for s in middle.latencies]
    print(
        f"  turn latency p50 {percentile(ms, 50):.0f} ms  p95 {percentile(ms, 95):.0f} ms  "
        f"max {max(ms):.0f} ms  mean {statistics.mean(ms):.0f} ms"
    )
    cpu = middle.agent_cpu
    print(f"  agent CPU {cpu:.2f} s ({cpu * per_turn:.2f} ms per turn, all processes)")
    rest = middle.machine_cpu - cpu - middle.emulator_cpu - middle.own_cpu
    print(
        f"  machine busy {middle.machine_cpu:.2f} s ({middle.machine_cpu * per_turn:.2f} ms per "
        f"turn): emulator {middle.emulator_cpu * per_turn:.2f} ms, this script "
        f"{middle.own_cpu * per_turn:.2f} ms, the rest (PostgreSQL, Redis, others) "
        f"{rest * per_turn:.2f} ms"
    )
    for n, (was, now) in enumerate(zip(before, after, strict=True)):
        print(
            f"  agent {n} RSS {was['VmRSS'] / 1024:.0f} MiB before, {now['VmRSS'] / 1024:.0f} "
            f"MiB after, peak {now['VmHWM'] / 1024:.0f} MiB"
        )
