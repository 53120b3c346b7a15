"""Prometheus metrics of the buffer: messages recorded, turns released, stuck turns, and the
conversations active now."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "baton_buffer_messages_total", "Inbound messages by outcome (recorded, duplicate)", ["outcome"]
)
TURNS_RELEASED = Counter(
    "baton_buffer_turns_released_total",
    "Turns released to the agent, by closing rule",
    ["closed_by"],
)
TURN_MESSAGES = Histogram(
    "baton_buffer_turn_messages",
    "Messages per released turn",
    buckets=(1, 2, 3, 5, 8, 13, 20, 50, 100),
)
RELEASE_LATENESS = Histogram(
    "baton_buffer_release_lateness_seconds",
    "How long after its closing time a turn was released",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
)
STUCK_TURNS = Counter(
    "baton_buffer_stuck_turns_total", "Turns given up on after BUFFER_STUCK_TURN_SECONDS"
)
STUCK_DEFERRED = Counter(
    "baton_buffer_stuck_deferred_total",
    "Looks at a turn over BUFFER_STUCK_TURN_SECONDS that kept it in flight: the agents were "
    "behind or down, so the turn was waiting, not lost",
)
TURNS_COMPLETED = Counter(
    "baton_buffer_turns_completed_total", "Turn completions reported by the agent", ["outcome"]
)
ACTIVE_CONVERSATIONS = Gauge(
    "baton_buffer_active_conversations",
    "Conversations with an open burst or a turn in flight (all replicas; sampled from "
    "PostgreSQL by the ticker every few seconds)",
)
