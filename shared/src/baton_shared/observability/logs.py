"""Structured JSON logs: one line per record, with service, event and trace context.

Context comes from the record's `extra` (only the names in `CONTEXT_FIELDS` are written);
`trace_id` and `span_id` are taken from the current span when the record has none. The
consumer writes one line per event handled on the `baton.events` logger (see
`baton_shared.streams.consumer`).

Never logged: message bodies (the `body` extra is dropped unless `LOG_BODIES=true` switched
it on through `configure_logging(..., log_bodies=True)`), and the values of secret settings
(registered with `redact`; replaced by `[redacted]` wherever they appear in a line).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from baton_shared.observability import tracing

CONTEXT_FIELDS = (
    "conversation_id",
    "event_id",
    "event_type",
    "trace_id",
    "span_id",
    "stream",
    "group",
    "entry_id",
    "delivery",
    "outcome",
    "duration_ms",
    "error",
)
REDACTED = "[redacted]"
EVENTS_LOGGER = "baton.events"


class _Options:
    log_bodies = False
    secrets: tuple[str, ...] = ()


_options = _Options()


def redact(values: Iterable[str]) -> None:
    """Never write these values (secrets) into a log line; short values are ignored."""
    found = {v for v in values if isinstance(v, str) and len(v) >= 6}
    _options.secrets = tuple(sorted(found | set(_options.secrets), key=len, reverse=True))


def set_log_bodies(enabled: bool) -> None:
    """Allow (`LOG_BODIES=true`, debugging only) or forbid event bodies in log lines."""
    _options.log_bodies = enabled


def log_bodies() -> bool:
    """Whether event bodies may be logged."""
    return _options.log_bodies


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; never includes message bodies on its own."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                data[field] = value if isinstance(value, int | float) else str(value)
        if "trace_id" not in data and (ids := tracing.current_ids()) is not None:
            data["trace_id"], data["span_id"] = ids
        body = getattr(record, "body", None)
        if body is not None and _options.log_bodies:
            data["body"] = str(body)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        line = json.dumps(data, ensure_ascii=False)
        for secret in _options.secrets:
            # As the line holds it: JSON escapes a secret's quotes and backslashes, so the
            # raw text alone would not match there.
            for form in {secret, json.dumps(secret, ensure_ascii=False)[1:-1]}:
                if form in line:
                    line = line.replace(form, REDACTED)
        return line


def configure_logging(service: str, level: str = "INFO", *, log_bodies: bool = False) -> None:
    """Route all logging to stdout as JSON lines tagged with `service`."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    set_log_bodies(log_bodies)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
