"""Base settings every service extends: environment, PostgreSQL, Redis, stream delivery options."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

Environment = Literal["development", "test", "production"]

# Values that only make sense on a developer's laptop. Outside development they are refused at
# start, so a deployment cannot run with a secret that is printed in our own docs.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "dev", "development", "emulator"}
)


def is_placeholder(value: str) -> bool:
    """True when a secret is empty, a known placeholder, or starts with `dev-`."""
    return value.strip().lower() in PLACEHOLDER_SECRETS or value.startswith("dev-")


class BusSettings(BaseSettings):
    """Where the streams are: what every service and the `baton-dlq` tool need.

    Attributes:
        redis_url: Redis URL (`redis://host:port/db` or `unix:///path`).
        redis_prefix: prefix for every Redis key and stream; empty in production.
        stream_maxlen: how many entries a stream of Baton's may hold while a consumer group
            that is not Baton's still needs them (`streams.trim`); the approximate MAXLEN of
            any other stream published to.
        publish_dedupe_seconds: how long a published event id is remembered, so that the same
            event published again (an outbox row re-published after a crash, a webhook body
            WhatsApp sends again) is appended once (`PUBLISH_DEDUPE_SECONDS`). Each published
            event leaves one small Redis key for this long: at 1,000 events/s an hour is
            ~3.6 million keys (~300 MB). Consumers de-duplicate durably on their own (inbox,
            unique keys), so this only saves them work.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = ""
    stream_maxlen: int = Field(default=100_000, ge=1000)
    publish_dedupe_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)

    @field_validator("redis_url")
    @classmethod
    def _redis_only(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL must start with redis://, rediss:// or unix://")
        return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class BaseServiceSettings(BusSettings):
    """Settings shared by every service, read from the environment and an optional `.env`
    (besides those of `BusSettings`).

    Attributes:
        baton_env: `development` and `test` accept placeholder secrets; `production` refuses them.
        database_url: SQLAlchemy URL of the application database (`postgresql+asyncpg://...`).
        host: interface the HTTP server binds to.
        db_pool_size: PostgreSQL connections kept per process (as many again may be opened
            for bursts); size it with PostgreSQL's `max_connections` and the replica count.
        consumer_batch: entries read per XREADGROUP call.
        consumer_block_ms: how long a read blocks waiting for new entries.
        reclaim_idle_ms: pending entries idle this long are reclaimed from a (dead) consumer.
        max_deliveries: an entry that failed this many times moves to `<stream>.dlq`.
        inbox_retention_days: processed event ids are remembered this long; a redelivery or
            DLQ re-drive of an event processed longer ago would be processed again.
        retention_days: how long a service keeps its own records of what it did (ingress's
            raw webhook archive and duplicate markers, the buffer's messages and turns, the
            agent's turn log and checkpoint history, the sender's messages); older ones are
            deleted hourly. 0 keeps them for ever. At least 8 otherwise: they recognise
            duplicates, and WhatsApp redelivers for 7 days (`RETENTION_DAYS`).
        log_level: Python logging level name.
        baton_nice: CPU niceness the process runs at (`BATON_NICE`, 0..19; 0, the default,
            leaves it as started): give background processes a higher one than the ingress
            `web` process so the request path keeps its CPU (`baton_shared.priority`).
    """

    baton_env: Environment = "production"
    database_url: str = Field(min_length=1)
    host: str = "127.0.0.1"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    consumer_batch: int = Field(default=64, ge=1, le=10_000)
    consumer_block_ms: int = Field(default=1000, ge=1, le=60_000)
    reclaim_idle_ms: int = Field(default=30_000, ge=10)
    max_deliveries: int = Field(default=5, ge=1, le=100)
    inbox_retention_days: float = Field(default=30, ge=8)
    retention_days: float = Field(default=30, ge=0)
    log_level: str = "INFO"
    baton_nice: int = Field(default=0, ge=0, le=19)

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgresql+asyncpg://", "postgres://")):
            raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql+asyncpg://...)")
        try:  # the parts, as the driver will read them; the message never shows the URL
            url = make_url(value)
            port = url.port
        except ValueError:
            raise ValueError("DATABASE_URL is not a valid URL (is its port a number?)") from None
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"DATABASE_URL's port {port} is not a TCP port")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("retention_days")
    @classmethod
    def _outlast_redeliveries(cls, value: float) -> float:
        if 0 < value < 8:
            raise ValueError(
                "RETENTION_DAYS must be 0 (keep for ever) or at least 8: the records it prunes "
                "recognise duplicates, and WhatsApp redelivers a webhook for 7 days"
            )
        return value

    @property
    def is_development(self) -> bool:
        """True for `development` and `test`, where placeholder secrets are allowed."""
        return self.baton_env in ("development", "test")

    def secret_fields(self) -> tuple[str, ...]:
        """Names of fields that hold secrets; services override to list theirs."""
        return ()

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> BaseServiceSettings:
        if self.is_development:
            return self
        bad = [
            name.upper()
            for name in self.secret_fields()
            if is_placeholder(str(getattr(self, name)))
        ]
        if bad:
            raise ValueError(
                f"{', '.join(bad)} must be set to a real secret when BATON_ENV={self.baton_env} "
                "(placeholders are accepted only with BATON_ENV=development)"
            )
        return self
