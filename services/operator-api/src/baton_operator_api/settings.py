"""Settings of the operator-api: port, bootstrap admin token, limits."""

from __future__ import annotations

from pydantic import Field

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
    """

    port: int = Field(8081, validation_alias="OPERATOR_API_PORT", ge=0, le=65535)
    bootstrap_admin_token: str = Field("", validation_alias="BATON_BOOTSTRAP_ADMIN_TOKEN")
    bootstrap_admin_name: str = Field("admin", validation_alias="BATON_BOOTSTRAP_ADMIN_NAME")
    fence_resync_seconds: float = Field(
        30.0, validation_alias="OPERATOR_API_FENCE_RESYNC_SECONDS", gt=0
    )
    max_body_bytes: int = Field(65_536, validation_alias="OPERATOR_API_MAX_BODY_BYTES", ge=1024)
    window_hours: int = Field(24, ge=1)

    def secret_fields(self) -> tuple[str, ...]:
        """The bootstrap token is a secret, checked only when it is set."""
        return ("bootstrap_admin_token",) if self.bootstrap_admin_token else ()
