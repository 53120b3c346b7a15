"""Settings of the operator-api: port, bootstrap admin token, limits, media downloads."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from baton_operator_api.templates import load_templates
from baton_shared.settings import BaseServiceSettings


class OperatorApiSettings(BaseServiceSettings):
    """Operator-api settings, read from the environment.

    Attributes:
        port: HTTP port (`OPERATOR_API_PORT`, default 8081).
        bootstrap_admin_token: `BATON_BOOTSTRAP_ADMIN_TOKEN`; when set, an admin operator with
            this token is created or updated at start.
        bootstrap_admin_name: name of that admin operator.
        fence_resync_seconds: how often the Redis fencing hashes are re-synced from PostgreSQL.
        max_body_bytes: request bodies larger than this are refused with 413.
        window_hours: the customer-service window for free-form operator messages.
        wa_graph_url: base URL of the Graph API, or of the emulator (`WA_GRAPH_URL`).
        wa_api_version: Graph API version in every request path (`WA_API_VERSION`).
        wa_access_token: bearer token of the business (`WA_ACCESS_TOKEN`), a secret: media
            lookups and downloads need it.
        wa_http_timeout: seconds a Graph call or a download waits for the next bytes.
        media_max_bytes: customer media larger than this is refused (download `failed`);
            WhatsApp's own inbound limit is 100 MB (`OPERATOR_API_MEDIA_MAX_BYTES`).
        media_concurrency: downloads one replica runs at once (`OPERATOR_API_MEDIA_CONCURRENCY`).
        media_max_attempts: tries before a transiently failing download is marked `failed`.
        media_retry_base_seconds: first backoff delay; doubles per attempt, with jitter.
        media_retry_max_seconds: longest backoff delay.
        media_lease_seconds: a claimed download not finished in this time is claimed again
            (its worker died); a late finish by the first worker is then discarded.
        media_poll_seconds: how often an idle worker looks for due downloads (new customer
            media wakes the worker of the replica that recorded it at once).
        media_retention_days: delete the bytes of customer media this long after download
            (the transcript then shows the item `expired`); 0 keeps them for ever
            (`OPERATOR_API_MEDIA_RETENTION_DAYS`).
        transcript_retention_days: delete transcript messages, and customer media with
            them, this long after they happened; 0, the default, keeps the business's record
            for ever; otherwise at least 31, as WhatsApp reports a message's status for up to
            30 days (`OPERATOR_API_TRANSCRIPT_RETENTION_DAYS`). `RETENTION_DAYS` does not
            apply here.
        feed_max_clients: live feeds (`GET /api/v1/events`) one replica serves at once; each
            holds a Redis connection of the feed's own pool, so feeds can never take the
            connections takeovers and handbacks need. One more is answered 503
            (`OPERATOR_API_FEED_MAX_CLIENTS`).
        feed_recheck_seconds: how often an open feed checks that its token is still valid;
            a revoked token's or deactivated operator's feed ends within this time
            (`OPERATOR_API_FEED_RECHECK_SECONDS`).
        templates_file: the business's approved message templates, YAML or JSON (see
            `templates`); unset, any template is passed on to WhatsApp
            (`OPERATOR_API_TEMPLATES_FILE`).
    """

    port: int = Field(8081, validation_alias="OPERATOR_API_PORT", ge=0, le=65535)
    bootstrap_admin_token: str = Field("", validation_alias="BATON_BOOTSTRAP_ADMIN_TOKEN")
    bootstrap_admin_name: str = Field("admin", validation_alias="BATON_BOOTSTRAP_ADMIN_NAME")
    fence_resync_seconds: float = Field(
        30.0, validation_alias="OPERATOR_API_FENCE_RESYNC_SECONDS", gt=0
    )
    max_body_bytes: int = Field(65_536, validation_alias="OPERATOR_API_MAX_BODY_BYTES", ge=1024)
    feed_max_clients: int = Field(
        50, validation_alias="OPERATOR_API_FEED_MAX_CLIENTS", ge=1, le=10_000
    )
    feed_recheck_seconds: float = Field(
        30.0, validation_alias="OPERATOR_API_FEED_RECHECK_SECONDS", gt=0
    )
    window_hours: int = Field(24, ge=1)
    wa_graph_url: str = Field("https://graph.facebook.com", pattern=r"^https?://[^/\s]+")
    wa_api_version: str = Field("v21.0", pattern=r"^v\d+\.\d+$")
    wa_access_token: str = ""
    wa_http_timeout: float = Field(20.0, gt=0)
    media_max_bytes: int = Field(
        100 * 1024 * 1024, validation_alias="OPERATOR_API_MEDIA_MAX_BYTES", ge=1024
    )
    media_concurrency: int = Field(
        4, validation_alias="OPERATOR_API_MEDIA_CONCURRENCY", ge=1, le=64
    )
    media_max_attempts: int = Field(
        8, validation_alias="OPERATOR_API_MEDIA_MAX_ATTEMPTS", ge=1, le=50
    )
    media_retry_base_seconds: float = Field(
        2.0, validation_alias="OPERATOR_API_MEDIA_RETRY_BASE_SECONDS", ge=0
    )
    media_retry_max_seconds: float = Field(
        300.0, validation_alias="OPERATOR_API_MEDIA_RETRY_MAX_SECONDS", ge=0
    )
    media_lease_seconds: float = Field(
        300.0, validation_alias="OPERATOR_API_MEDIA_LEASE_SECONDS", gt=0
    )
    media_poll_seconds: float = Field(1.0, validation_alias="OPERATOR_API_MEDIA_POLL_SECONDS", gt=0)
    media_retention_days: float = Field(
        0, validation_alias="OPERATOR_API_MEDIA_RETENTION_DAYS", ge=0
    )
    transcript_retention_days: float = Field(
        0, validation_alias="OPERATOR_API_TRANSCRIPT_RETENTION_DAYS", ge=0
    )

    templates_file: Path | None = Field(None, validation_alias="OPERATOR_API_TEMPLATES_FILE")

    @field_validator("templates_file")
    @classmethod
    def _templates_readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_templates(value)  # every problem, at start
        return value

    @field_validator("transcript_retention_days")
    @classmethod
    def _outlast_statuses(cls, value: float) -> float:
        if 0 < value < 31:
            raise ValueError(
                "OPERATOR_API_TRANSCRIPT_RETENTION_DAYS must be 0 (keep for ever) or at least "
                "31: WhatsApp reports a message's status for up to 30 days"
            )
        return value

    def secret_fields(self) -> tuple[str, ...]:
        """The access token must be real outside development (as in the sender); the
        bootstrap token is checked only when it is set."""
        bootstrap = ("bootstrap_admin_token",) if self.bootstrap_admin_token else ()
        return ("wa_access_token", *bootstrap)
