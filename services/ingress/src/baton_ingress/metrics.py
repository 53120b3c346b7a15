"""Prometheus metrics of ingress: webhook answers and what the worker made of them."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOKS = Counter(
    "baton_ingress_webhooks_total", "POST /webhook answers by HTTP status", ["status"]
)
UPDATES = Counter(
    "baton_ingress_updates_total",
    "Updates parsed from webhook bodies, by kind and outcome",
    ["kind", "outcome"],
)
REJECTED = Counter(
    "baton_ingress_rejected_total", "Webhook parts sent to the dead-letter stream", ["reason"]
)
