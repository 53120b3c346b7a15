"""Prometheus metrics of the event backbone, shared by every service (served at `/metrics`).

Consumers (labels `stream`, `group`), updated by `baton_shared.streams.consumer.Consumer`:

- `baton_stream_handled_total`: entries handled and acknowledged.
- `baton_stream_handler_failures_total`: handler exceptions (the entry stays pending, retried).
- `baton_stream_outages_total`: handlings (or read batches) that met an outage of PostgreSQL or
  Redis: the entries stay pending without counting towards dead-lettering, and the consumer
  backs off.
- `baton_stream_reclaimed_total`: entries reclaimed (XAUTOCLAIM) from idle consumers.
- `baton_stream_dead_lettered_total`: entries moved to `<stream>.dlq`.
- `baton_stream_ignored_total`: entries of an event type this version does not know (acked).
- `baton_stream_handler_seconds` (histogram): handler latency of successful entries.
- `baton_stream_delivery_delay_seconds` (histogram): from the event's `occurred_at` to the
  start of its handling, i.e. how late this group sees facts.

Consumer groups, sampled every `METRICS_SAMPLE_SECONDS` by `StreamSampler` (XINFO GROUPS,
XPENDING, XLEN) for the streams the process consumes:

- `baton_stream_lag` (`stream`, `group`): entries not yet delivered to the group.
- `baton_stream_pending` (`stream`, `group`): delivered, not yet acknowledged.
- `baton_stream_oldest_pending_age_seconds` (`stream`, `group`): age of the oldest pending
  entry (from its entry id), 0 when none; a stuck entry shows here.
- `baton_stream_length` (`stream`): entries in the stream (bounded by MAXLEN~).
- `baton_stream_dlq_length` (`stream`): entries in `<stream>.dlq`.

Publishing (`baton_shared.streams.bus.Bus`):

- `baton_stream_published_total` (`stream`, `outcome` = appended | duplicate).

Outbox relay (label `schema`, `baton_shared.db.outbox.OutboxRelay`):

- `baton_outbox_published_total`: outbox rows published.
- `baton_outbox_backlog`: rows waiting to be published.
- `baton_outbox_oldest_seconds`: age of the oldest waiting row, 0 when empty.
- `baton_outbox_relay_failures_total`: relay rounds that failed (PostgreSQL or Redis away).

Retention (labels `schema`, `table`, `baton_shared.db.retention.Pruner`):

- `baton_pruned_rows_total`: rows deleted after their retention (`INBOX_RETENTION_DAYS` for
  `inbox`, `RETENTION_DAYS` for a service's own records).

HTTP (labels `method`, `route` template, `status`), by the middleware `build_app` installs:

- `baton_http_request_seconds` (histogram); `/health*` and `/metrics` are not counted.

Each service adds its own domain metrics (`baton_<service>_...`) in its `metrics.py`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LABELS = ["stream", "group"]

# Handlers range from a millisecond (an inbox insert) to a model turn of many seconds.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

HANDLED = Counter("baton_stream_handled_total", "Entries handled and acknowledged", _LABELS)
HANDLER_FAILURES = Counter(
    "baton_stream_handler_failures_total", "Handler exceptions (entry left pending)", _LABELS
)
OUTAGES = Counter(
    "baton_stream_outages_total",
    "Handlings that met a PostgreSQL or Redis outage (entries left pending, not counted)",
    _LABELS,
)
RECLAIMED = Counter(
    "baton_stream_reclaimed_total", "Entries reclaimed from idle consumers", _LABELS
)
DEAD_LETTERED = Counter(
    "baton_stream_dead_lettered_total", "Entries moved to the dead-letter stream", _LABELS
)
IGNORED = Counter(
    "baton_stream_ignored_total", "Entries of an unknown event type, acknowledged", _LABELS
)
HANDLER_SECONDS = Histogram(
    "baton_stream_handler_seconds", "Handler latency", _LABELS, buckets=LATENCY_BUCKETS
)
DELIVERY_DELAY = Histogram(
    "baton_stream_delivery_delay_seconds",
    "From the event's occurred_at to the start of its handling",
    _LABELS,
    buckets=LATENCY_BUCKETS,
)

LAG = Gauge("baton_stream_lag", "Entries not yet delivered to the group", _LABELS)
PENDING = Gauge("baton_stream_pending", "Entries delivered but not acknowledged", _LABELS)
OLDEST_PENDING = Gauge(
    "baton_stream_oldest_pending_age_seconds", "Age of the oldest pending entry", _LABELS
)
LENGTH = Gauge("baton_stream_length", "Entries in the stream", ["stream"])
DLQ_LENGTH = Gauge(
    "baton_stream_dlq_length", "Entries in the stream's dead-letter stream", ["stream"]
)

PUBLISHED = Counter(
    "baton_stream_published_total", "Publish calls by outcome", ["stream", "outcome"]
)

OUTBOX_PUBLISHED = Counter("baton_outbox_published_total", "Outbox rows published", ["schema"])
OUTBOX_BACKLOG = Gauge("baton_outbox_backlog", "Outbox rows waiting to be published", ["schema"])
OUTBOX_OLDEST = Gauge(
    "baton_outbox_oldest_seconds", "Age of the oldest outbox row waiting", ["schema"]
)
PRUNED = Counter(
    "baton_pruned_rows_total", "Rows deleted after their retention", ["schema", "table"]
)
OUTBOX_FAILURES = Counter(
    "baton_outbox_relay_failures_total", "Outbox relay rounds that failed", ["schema"]
)

HTTP_SECONDS = Histogram(
    "baton_http_request_seconds",
    "HTTP request latency by route template and status",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
