"""WhatsApp's sending rules the emulator enforces: throughput, pair rate, 24-hour window.

- Throughput (130429): a token bucket per business number, `throughput_mps` tokens per second
  and a burst of one second's worth. Every messages-endpoint call counts (mark-as-read too).
- Pair rate (131056): a token bucket per (business number, customer): one message every
  `pair_interval_seconds` (6 s), bursts up to `pair_burst` (45) that borrow future quota.
- Customer-service window (131047): a free-form message to a customer whose last message
  (`POST /_emulator/inbound`, or a customer message in `POST /_emulator/webhook`) is older
  than `window_hours`, or who never wrote, fails; templates always go out. Answered
  synchronously or, like most integrations observe, with 200 + wamid and a failed status
  webhook (`window_mode`).

A refused call spends no token, like a refused call at Meta does not count as a send.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from baton_devtools.whatsapp.errors import GraphError
from baton_devtools.whatsapp.faults import DETAILS

# Types that may be sent outside the customer-service window.
WINDOW_FREE_TYPES = frozenset({"template"})


@dataclass
class TokenBucket:
    """A continuously refilled bucket: `rate` tokens per second, at most `burst`."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def level(self, now: float) -> float:
        """Tokens available at `now` (monotonic seconds)."""
        return min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)

    def settle(self, now: float, spend: bool) -> None:
        """Refill up to `now`, then spend one token if `spend`."""
        self.tokens = self.level(now) - (1 if spend else 0)
        self.stamp = now


class Limits:
    """The buckets and the customers' last inbound times of one emulator."""

    def __init__(self) -> None:
        self.numbers: dict[str, TokenBucket] = {}
        self.pairs: dict[tuple[str, str], TokenBucket] = {}
        self.last_inbound: dict[tuple[str, str], float] = {}
        self.refused: dict[int, int] = {}

    def reset(self) -> None:
        """Forget buckets (full again) and refusal counts; inbound times are kept."""
        self.numbers.clear()
        self.pairs.clear()
        self.refused.clear()

    def record_inbound(self, phone_number_id: str, wa_id: str, timestamp: float) -> None:
        """A customer wrote at `timestamp` (Unix seconds): their window runs from the latest."""
        key = (phone_number_id, wa_id.lstrip("+"))
        self.last_inbound[key] = max(timestamp, self.last_inbound.get(key, 0.0))

    def record_webhook(self, payload: Any) -> None:
        """Record every customer message in a raw webhook payload posted to ingress."""
        for phone_number_id, message in customer_messages(payload):
            sender, stamp = message.get("from"), message.get("timestamp")
            if isinstance(sender, str) and isinstance(stamp, str | int) and str(stamp).isdigit():
                self.record_inbound(phone_number_id, sender, float(stamp))

    def check_throughput(self, phone_number_id: str, mps: int | None) -> GraphError | None:
        """Take a throughput token, or return 130429 when the number is over `mps`."""
        if mps is None:
            return None
        bucket = self.numbers.get(phone_number_id)
        if bucket is None or bucket.rate != mps:
            bucket = self.numbers[phone_number_id] = TokenBucket(mps, mps)
        return self._take([bucket], 130429)

    def check_pair(
        self, phone_number_id: str, to: str, interval: float, burst: int
    ) -> GraphError | None:
        """Take the pair's token, or return 131056 when this customer is messaged too fast."""
        key = (phone_number_id, to)
        bucket = self.pairs.get(key)
        if bucket is None or bucket.burst != burst or bucket.rate != 1 / interval:
            bucket = self.pairs[key] = TokenBucket(1 / interval, burst)
        return self._take([bucket], 131056)

    def window_closed(
        self, phone_number_id: str, to: str, message_type: str, hours: float
    ) -> GraphError | None:
        """131047 for a free-form message when `to` has not written within `hours`."""
        if message_type in WINDOW_FREE_TYPES:
            return None
        last = self.last_inbound.get((phone_number_id, to))
        if last is not None and time.time() - last < hours * 3600:
            return None
        self.refused[131047] = self.refused.get(131047, 0) + 1
        return GraphError(131047, DETAILS[131047])

    def _take(self, buckets: list[TokenBucket], code: int) -> GraphError | None:
        now = time.monotonic()
        allowed = all(bucket.level(now) >= 1 for bucket in buckets)
        for bucket in buckets:
            bucket.settle(now, spend=allowed)
        if allowed:
            return None
        self.refused[code] = self.refused.get(code, 0) + 1
        return GraphError(code, DETAILS[code])


def customer_messages(payload: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(phone_number_id, message) for every `messages[]` item of a webhook payload."""
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                continue
            metadata = value.get("metadata")
            number = str(metadata.get("phone_number_id", "")) if isinstance(metadata, dict) else ""
            messages = value.get("messages")
            for message in messages if isinstance(messages, list) else []:
                if isinstance(message, dict):
                    yield number, message
