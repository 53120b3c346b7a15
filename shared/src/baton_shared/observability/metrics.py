"""Prometheus metrics of the event backbone, labelled by stream and consumer group."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HANDLED = Counter(
    "baton_stream_handled_total", "Entries handled and acknowledged", ["stream", "group"]
)
HANDLER_FAILURES = Counter(
    "baton_stream_handler_failures_total",
    "Handler exceptions (entry left pending)",
    ["stream", "group"],
)
RECLAIMED = Counter(
    "baton_stream_reclaimed_total", "Entries reclaimed from idle consumers", ["stream", "group"]
)
DEAD_LETTERED = Counter(
    "baton_stream_dead_lettered_total",
    "Entries moved to the dead-letter stream",
    ["stream", "group"],
)
HANDLER_SECONDS = Histogram("baton_stream_handler_seconds", "Handler latency", ["stream", "group"])
OUTBOX_PUBLISHED = Counter("baton_outbox_published_total", "Outbox rows published", ["schema"])
OUTBOX_BACKLOG = Gauge("baton_outbox_backlog", "Outbox rows waiting to be published", ["schema"])
