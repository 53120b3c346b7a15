"""The agent's floor: what the required components alone cost per turn, without Baton.

Issue 5 asks for 250 turns/s with the model answering in 2 s, on 2 cores, from an agent built
on LangGraph with the PostgreSQL checkpointer and `ChatGoogleGenerativeAI`. This benchmark
runs only those components, the way Baton configures them (its model client and its pooled
checkpointer, on uvloop with the cycle collector settled, as `baton-agent serve` runs), with
none of Baton's own work: no streams, no outbox, no turn log, no
fencing, no prompts. Each turn is one model call through the Gemini emulator:

- `model`: `ChatGoogleGenerativeAI.ainvoke` alone;
- `graph`: a one-node `StateGraph` around that call, checkpointed in memory;
- `graph_pg`: the same graph checkpointed in PostgreSQL (one write per run, as the agent).

`--processes N` runs the turns in N worker processes at once (each its share, all
concurrently in asyncio); the rate is turns over the time from the start signal to the last
answer. If a variant's rate is below the goal, or its machine time per turn above the 8 ms
that 250 turns/s on 2 cores allows, the goal cannot be met by an agent built on these
components on this machine, whatever Baton's own code costs.

`python -m bench agent_floor [--variant model|graph|graph_pg|all] [--processes 2]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Coroutine
from typing import Annotated, Any, TypedDict

import httpx
import uvloop
from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from baton_agent.checkpointer import PooledPostgresSaver, checkpoint_pool
from baton_agent.llm import build_model
from baton_agent.main import GC_YOUNG_THRESHOLD
from baton_agent.settings import AgentSettings
from baton_shared import collector
from bench.agent_turns import BIN, ROOT, process, wait_http
from bench.measure import cpu_seconds, infra_and_database, machine_busy_seconds, machine_line

VARIANTS = ("model", "graph", "graph_pg")
GOAL_TURNS_PER_SECOND = 250


class State(TypedDict):
    """The graph's state: the conversation's messages."""

    messages: Annotated[list[AnyMessage], add_messages]


async def _worker(variant: str, count: int, offset: int, gemini: str, database_url: str) -> None:
    """One worker process: set up, say `ready`, wait for `go`, run `count` turns at once,
    print the seconds they took as JSON, wait for `exit`."""
    settings = AgentSettings(
        baton_env="test",
        database_url=database_url,
        gemini_base_url=gemini,
        google_api_key="bench",
        concurrency=count,
    )  # type: ignore[call-arg]
    model = build_model(settings)

    async def call_model(state: State) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(State)
    builder.add_node("model", call_model)
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    pool = None
    if variant == "graph_pg":
        pool = checkpoint_pool(database_url, max_size=min(count, 50))
        await pool.open()
        saver: Any = PooledPostgresSaver(pool)
    else:
        saver = InMemorySaver()
    graph = builder.compile(checkpointer=saver)

    async def turn(n: int) -> None:
        messages = [HumanMessage(f"hello, this is customer {n}: what are your opening hours?")]
        if variant == "model":
            await model.ainvoke(messages)
        else:
            thread = {"configurable": {"thread_id": f"floor-{offset + n}"}}
            await graph.ainvoke({"messages": messages}, thread, durability="exit")  # type: ignore[arg-type]

    await turn(-1)  # the first call opens connections and loads what is loaded lazily
    collector.settle(GC_YOUNG_THRESHOLD)  # as `baton-agent serve` does once started
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    start = time.perf_counter()
    await asyncio.gather(*(turn(n) for n in range(count)))
    print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
    # Stay until told: the parent reads this process's CPU time first.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if pool is not None:
        await pool.close()


def _run_on_uvloop(work: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(work)


async def _run_variant(
    variant: str, turns: int, processes: int, gemini: str, database_url: str, emulator_pid: int
) -> dict[str, float]:
    """Start the workers, give the signal, wait for all; the figures of the variant."""
    share = [turns // processes + (1 if n < turns % processes else 0) for n in range(processes)]
    workers = []
    offset = 0
    for count in share:
        argv = [
            sys.executable, "-m", "bench", "agent_floor", "--worker", variant,
            "--count", str(count), "--offset", str(offset),
            "--gemini", gemini, "--database-url", database_url,
        ]  # fmt: skip
        offset += count
        workers.append(
            await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT
            )
        )
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = await asyncio.wait_for(worker.stdout.readline(), timeout=120)
            if line.strip() != b"ready":
                raise RuntimeError(f"worker did not start: {line!r}")
        cpu_before = sum(cpu_seconds(w.pid) for w in workers)
        emulator_before = cpu_seconds(emulator_pid)
        machine_before = machine_busy_seconds()
        start = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
        for worker in workers:
            assert worker.stdout is not None
            json.loads(await asyncio.wait_for(worker.stdout.readline(), timeout=300))
        seconds = time.perf_counter() - start
        cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu_before
        machine = machine_busy_seconds() - machine_before
        emulator = cpu_seconds(emulator_pid) - emulator_before
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(b"exit\n")
            await worker.stdin.drain()
    finally:
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.kill()
            await worker.wait()
    return {
        "seconds": seconds,
        "rate": turns / seconds,
        "worker_ms": cpu * 1000 / turns,
        "emulator_ms": emulator * 1000 / turns,
        "machine_ms": machine * 1000 / turns,
    }


async def main(argv: list[str]) -> None:
    """Start PostgreSQL and the emulator, run the variants, print the figures."""
    parser = argparse.ArgumentParser(prog="bench agent_floor", description=__doc__)
    parser.add_argument("--variant", choices=(*VARIANTS, "all"), default="all")
    parser.add_argument("--turns", type=int, default=1000, help="conversations, one turn each")
    parser.add_argument("--delay-ms", type=int, default=2000, help="model answer delay")
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--gemini", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:  # on uvloop, as the agent runs under uvicorn
        work = _worker(args.worker, args.count, args.offset, args.gemini, args.database_url)
        await asyncio.to_thread(_run_on_uvloop, work)
        return

    from baton_devtools import infra as infra_mod
    from baton_shared.db.engine import async_url

    variants = VARIANTS if args.variant == "all" else (args.variant,)
    logs = ROOT / ".data" / "bench-agent"
    logs.mkdir(parents=True, exist_ok=True)
    print(
        f"agent floor: {args.turns} turns, one model call each answering after "
        f"{args.delay_ms} ms, {args.processes} worker process(es), no Baton code"
    )
    print(machine_line())
    with infra_and_database() as (url, _):
        await _create_checkpoint_tables(async_url(url), url)
        port = infra_mod.free_port()
        gemini = f"http://127.0.0.1:{port}"
        emulator_argv = [str(BIN / "baton-dev"), "gemini-emulator", "--port", str(port)]
        log = logs / "gemini-floor.log"
        async with process(emulator_argv, {}, log) as emulator:
            await wait_http(f"{gemini}/_emulator/faults", emulator, log)
            async with httpx.AsyncClient(base_url=gemini) as client:
                fault = {"delay_ms": args.delay_ms}  # every call, no count
                (await client.post("/_emulator/faults", json=fault)).raise_for_status()
            for variant in variants:
                got = await _run_variant(
                    variant, args.turns, args.processes, gemini, url, emulator.pid
                )
                verdict = "meets" if got["rate"] >= GOAL_TURNS_PER_SECOND else "below"
                print(
                    f"  {variant:8s} {got['rate']:6.1f} turns/s ({got['seconds']:.2f} s; "
                    f"{verdict} the goal of {GOAL_TURNS_PER_SECOND}); per turn: workers "
                    f"{got['worker_ms']:.2f} ms CPU, emulator {got['emulator_ms']:.2f} ms, "
                    f"whole machine {got['machine_ms']:.2f} ms"
                )


async def _create_checkpoint_tables(sqlalchemy_url: str, url: str) -> None:
    """The checkpointer's tables in an `agent` schema, as the library creates them."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(sqlalchemy_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE SCHEMA IF NOT EXISTS agent"))
    await engine.dispose()
    pool = checkpoint_pool(url, max_size=1)
    await pool.open()
    try:
        await PooledPostgresSaver(pool).setup()
    finally:
        await pool.close()
