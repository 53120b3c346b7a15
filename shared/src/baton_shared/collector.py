"""Python's cycle collector, settled once a service has started serving."""

from __future__ import annotations

import gc


def settle(young_threshold: int | None = None) -> None:
    """Freeze everything that exists once the service has started out of the collector.

    Modules, schemas, routes and clients are most of a process's tracked objects (ingress:
    ~130,000; the agent: ~270,000) and live as long as it does, yet every full collection
    walks them all: 65-75 ms for ingress's and ~140 ms for the agent's on the reference
    machines, a pause that every request in flight waits through (it was the 100-200 ms
    maximum of the ingress benchmark's latencies). Frozen, they are skipped; objects made
    afterwards, and their cycles, are collected as before.

    `young_threshold`: allocations between young collections (Python's default 700), for a
    process that keeps many objects alive for a while (the agent's turns in flight).
    """
    gc.collect()
    gc.freeze()
    if young_threshold is not None:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, old)
