"""The operator-api's Prometheus metrics (default registry, served by `build_app` at /metrics).

- `baton_operator_actions_total` (`action` = takeover, force_takeover, handback, resolve,
  message): operator requests accepted (answered 2xx), no-ops included.
- `baton_operator_handoff_wait_seconds` (histogram): how long a conversation waited for a
  person, from its waiting clock (`waiting_since`: the intervention request, or the
  customer's first unanswered message before it) to the takeover that ended `pending_human`.
- `baton_operator_fence_ahead_total`: control changes that found the Redis fence at an epoch
  PostgreSQL had not reached (PostgreSQL restored from a backup?) and moved past it.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ACTIONS = Counter(
    "baton_operator_actions_total", "Operator actions accepted, by action", ["action"]
)
HANDOFF_WAIT = Histogram(
    "baton_operator_handoff_wait_seconds",
    "From intervention requested (waiting_since) to an operator's takeover",
    buckets=(1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0, 86400.0),
)
FENCE_AHEAD = Counter(
    "baton_operator_fence_ahead_total",
    "Control changes that found the Redis fence ahead of PostgreSQL and moved past it",
)
