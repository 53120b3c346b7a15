"""Ingress settings: the webhook secrets, the optional number allow-list, request limits."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from baton_shared.settings import BaseServiceSettings, is_placeholder


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


class IngressSettings(BaseServiceSettings):
    """Settings of the ingress service.

    Attributes:
        port: HTTP port of `GET/POST /webhook` (`INGRESS_PORT`).
        wa_app_secret: app secret(s) that sign webhooks, comma-separated during a rotation
            (`WA_APP_SECRET`).
        wa_verify_token: the token of the GET verification handshake (`WA_VERIFY_TOKEN`).
        wa_allowed_phone_number_ids: comma-separated business numbers accepted by the worker;
            empty accepts every number (`WA_ALLOWED_PHONE_NUMBER_IDS`).
        max_body_bytes: larger webhook bodies are refused with 413 (`INGRESS_MAX_BODY_BYTES`).
        publish_timeout_seconds: a Redis append slower than this answers 503
            (`INGRESS_PUBLISH_TIMEOUT_SECONDS`).
        role: what `baton-ingress serve` runs (`INGRESS_ROLE`): `all` (default) the webhook
            endpoint and the worker in one process; `web` only the endpoint (on `port`);
            `worker` only the worker, with `/health` and `/metrics` on `worker_port`.
        worker_port: HTTP port of a `worker` process (`INGRESS_WORKER_PORT`).
        worker_batch: `wa.webhooks` entries read and handled per transaction
            (`INGRESS_WORKER_BATCH`).
    """

    port: int = Field(8080, ge=0, le=65535, validation_alias="INGRESS_PORT")
    wa_app_secret: str = Field(validation_alias="WA_APP_SECRET")
    wa_verify_token: str = Field(validation_alias="WA_VERIFY_TOKEN")
    wa_allowed_phone_number_ids: str = Field("", validation_alias="WA_ALLOWED_PHONE_NUMBER_IDS")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1, validation_alias="INGRESS_MAX_BODY_BYTES")
    publish_timeout_seconds: float = Field(
        5.0, gt=0, validation_alias="INGRESS_PUBLISH_TIMEOUT_SECONDS"
    )
    role: Literal["all", "web", "worker"] = Field("all", validation_alias="INGRESS_ROLE")
    worker_port: int = Field(8085, ge=0, le=65535, validation_alias="INGRESS_WORKER_PORT")
    worker_batch: int = Field(256, ge=1, le=10_000, validation_alias="INGRESS_WORKER_BATCH")

    def secret_fields(self) -> tuple[str, ...]:
        """The app secret and the verify token must be real outside development."""
        return ("wa_app_secret", "wa_verify_token")

    @model_validator(mode="after")
    def _refuse_placeholder_rotation_secrets(self) -> Self:
        # The base check sees the comma-separated string as a whole; check every secret.
        if not self.is_development and any(is_placeholder(s) for s in self.app_secrets):
            raise ValueError("every WA_APP_SECRET must be a real secret outside development")
        if not self.app_secrets:
            raise ValueError("WA_APP_SECRET needs at least one secret")
        return self

    @property
    def http_port(self) -> int:
        """The port `serve` listens on: `worker_port` for a worker-only process."""
        return self.worker_port if self.role == "worker" else self.port

    @property
    def app_secrets(self) -> tuple[str, ...]:
        """Every accepted app secret (several while a secret is being rotated)."""
        return _split(self.wa_app_secret)

    @property
    def allowed_phone_number_ids(self) -> frozenset[str]:
        """Business numbers the worker accepts; empty means every number."""
        return frozenset(_split(self.wa_allowed_phone_number_ids))
