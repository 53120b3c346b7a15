"""Every Redis key the buffer owns (callers put them under the bus prefix with `bus.key`).

Redis holds only timers and claims; which messages belong to which turn, and which turn is in
flight, live in PostgreSQL.
"""

from __future__ import annotations


def deadlines() -> str:
    """Sorted set: conversation id -> epoch ms when a replica should next look at it."""
    return "buffer:deadlines"


def claims() -> str:
    """Sorted set: conversation id -> epoch ms when the claim of the replica working on it
    lapses (so a dead replica's claim is taken over)."""
    return "buffer:claims"
