"""Observability settings every service reads from the environment (and an optional `.env`).

They sit beside `BaseServiceSettings` rather than in it so that every service gets them
without declaring anything. Tracing export is configured only by the standard `OTEL_*`
variables (see `baton_shared.observability.tracing`).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ObservabilitySettings(BaseSettings):
    """Logs, metrics sampling and readiness thresholds.

    Attributes:
        log_bodies: `LOG_BODIES=true` adds event bodies (message texts) to the per-event log
            line. A debugging aid: bodies are personal data and never logged otherwise.
        log_events: `LOG_EVENTS=false` drops the one-line-per-event-handled log (failures are
            still logged).
        metrics_sample_seconds: how often stream lag, pending and DLQ sizes are sampled.
        ready_max_lag: `/health/ready` fails while a consumed stream's group lags more than
            this many entries.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    log_bodies: bool = False
    log_events: bool = True
    metrics_sample_seconds: float = Field(default=10.0, gt=0, le=3600)
    ready_max_lag: int = Field(default=10_000, ge=0)
