"""`Periodic`: a failing run is logged and the next run comes; stop ends it."""

from __future__ import annotations

import asyncio

from baton_shared.periodic import Periodic
from baton_shared.testing import wait_until


async def test_a_failed_run_does_not_stop_the_worker() -> None:
    runs: list[int] = []

    async def job() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("PostgreSQL away")

    worker = Periodic("job", 0.01, job)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))

    async def ran_again() -> bool:
        return len(runs) >= 3

    await wait_until(ran_again, what="runs after the failure")
    assert worker.running
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert not worker.running
