"""Prometheus metrics of ingress: webhook answers and what the worker made of them."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOKS = Counter(
    "baton_ingress_webhooks_total",
    "POST /webhook answers by outcome (ok, unsigned, bad_signature, too_large, not_json, "
    "unavailable) and HTTP status",
    ["outcome", "status"],
)

# Every outcome of `POST /webhook` and the HTTP status it answers.
OUTCOME_STATUS: dict[str, int] = {
    "ok": 200,
    "unsigned": 401,
    "bad_signature": 403,
    "too_large": 413,
    "not_json": 400,
    "unavailable": 503,
}
_WEBHOOK_COUNTERS = {
    outcome: WEBHOOKS.labels(outcome, str(status)) for outcome, status in OUTCOME_STATUS.items()
}


def count_webhook(outcome: str) -> int:
    """Count one `POST /webhook` answer with `outcome`; its HTTP status."""
    _WEBHOOK_COUNTERS[outcome].inc()
    return OUTCOME_STATUS[outcome]


UPDATES = Counter(
    "baton_ingress_updates_total",
    "Updates parsed from webhook bodies, by kind and outcome",
    ["kind", "outcome"],
)
REJECTED = Counter(
    "baton_ingress_rejected_total", "Webhook parts sent to the dead-letter stream", ["reason"]
)
