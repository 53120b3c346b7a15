"""The sender's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTCOMES = Counter(
    "baton_sender_messages_total",
    "Outbound messages by final outcome of the send step",
    ["outcome", "kind"],
)
RETRIES = Counter(
    "baton_sender_retries_total", "Transient failures scheduled for a retry", ["code"]
)
TOKEN_ERRORS = Counter(
    "baton_sender_token_errors_total",
    "ALERT: WhatsApp refused the access token (190); sending pauses until it is fixed",
)
AUTH_PAUSED = Gauge(
    "baton_sender_auth_paused", "1 while sending is paused after a token error, else 0"
)
RATE_LIMITED = Counter(
    "baton_sender_rate_limited_total", "Sends delayed by the sender's own rate limits"
)
NUMBER_PAUSES = Counter(
    "baton_sender_number_pauses_total",
    "WhatsApp answered 130429 (the number's throughput): its sends paused on every replica",
)
CALL_SECONDS = Histogram("baton_sender_call_seconds", "Latency of Graph API send calls")
IN_FLIGHT = Gauge("baton_sender_in_flight", "Messages being sent by this replica")
WA_ERRORS = Counter(
    "baton_sender_wa_errors_total",
    "Graph API calls answered with an error, by WhatsApp error code ('network': no answer)",
    ["code"],
)
LIMITER_WAIT = Histogram(
    "baton_sender_limiter_wait_seconds",
    "Time a send waited for its rate-limit slot (business number and customer pacing)",
    buckets=(0.0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
