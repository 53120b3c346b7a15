"""Settings of the WhatsApp Cloud API emulator, read from the environment (and `.env`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Hosts reserved for documentation (RFC 2606): no real media lives there, and the packaged
# media catalogue and many tests send links to them. Treated as fetched without a request.
DEFAULT_REACHABLE_MEDIA_HOSTS = ["example.com", "example.net", "example.org"]
# Redelivery of a webhook the receiver did not answer 200: "retried at once, then with
# decreasing frequency" (Meta retries for 7 days; the emulator for ~23 s by default).
DEFAULT_WEBHOOK_RETRY_MS = [100, 500, 2000, 5000, 15000]
MAX_WEBHOOK_RETRIES = 20
MAX_WEBHOOK_RETRY_MS = 600_000


class WaEmulatorSettings(BaseSettings):
    """Environment of the WhatsApp emulator.

    Attributes:
        wa_emulator_port: port `main` listens on (`WA_EMULATOR_PORT`).
        wa_app_secret: app secret that signs webhooks (`WA_APP_SECRET`).
        wa_access_token: the only bearer token the Graph endpoints accept (`WA_ACCESS_TOKEN`).
        wa_api_version: Graph version used in media URLs and status shapes (`WA_API_VERSION`).
        ingress_webhook_url: where customer and status webhooks are posted.
        wa_display_phone_number: `metadata.display_phone_number` of webhooks.
        wa_business_account_id: `entry[].id` (WABA id) of webhooks.
        wa_emulator_throughput_mps: messages per second per business number before 130429
            (`WA_EMULATOR_THROUGHPUT_MPS`; 0 = not enforced). WhatsApp: 80, up to 1,000.
        wa_emulator_pair_limit: enforce the pair rate limit, 131056 (`WA_EMULATOR_PAIR_LIMIT`).
        wa_emulator_enforce_window: enforce the 24-hour window, 131047
            (`WA_EMULATOR_ENFORCE_WINDOW`; off by default: tests that open windows through
            ingress events rather than through the emulator would otherwise fail).
        wa_emulator_reachable_media_hosts: hosts (and their subdomains) whose media links
            count as fetched without a request (`WA_EMULATOR_REACHABLE_MEDIA_HOSTS`,
            comma-separated; default example.com, example.net, example.org). Links to any
            other host are fetched like WhatsApp fetches them; empty = fetch every link.
        wa_emulator_media_fetch_timeout_ms: how long one media link fetch may take before
            the message fails with 131053 (`WA_EMULATOR_MEDIA_FETCH_TIMEOUT_MS`).
        wa_emulator_webhook_retry_ms: waits before each redelivery of a webhook the receiver
            did not answer 200 (`WA_EMULATOR_WEBHOOK_RETRY_MS`, comma-separated milliseconds;
            empty = no redelivery; at most 20 retries of at most 600000 ms each).
        wa_emulator_templates_file: the approved message templates (YAML or JSON, the format
            of `OPERATOR_API_TEMPLATES_FILE`) replacing the built-in ones
            (`WA_EMULATOR_TEMPLATES_FILE`).
        baton_nice: CPU niceness to run at (`BATON_NICE`, 0..19), as for the services.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    wa_emulator_port: int = Field(default=8090, ge=1, le=65535)
    wa_app_secret: str = Field(default="dev-app-secret", min_length=1)
    wa_access_token: str = Field(default="dev-access-token", min_length=1)
    wa_api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")
    ingress_webhook_url: str = "http://127.0.0.1:8080/webhook"
    wa_display_phone_number: str = "15550000001"
    wa_business_account_id: str = "100000000000000"
    wa_emulator_throughput_mps: int = Field(default=80, ge=0)
    wa_emulator_pair_limit: bool = True
    wa_emulator_enforce_window: bool = False
    wa_emulator_reachable_media_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_REACHABLE_MEDIA_HOSTS)
    )
    wa_emulator_media_fetch_timeout_ms: int = Field(default=2000, ge=1, le=60_000)
    wa_emulator_webhook_retry_ms: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_WEBHOOK_RETRY_MS)
    )
    wa_emulator_templates_file: Path | None = None
    baton_nice: int = Field(default=0, ge=0, le=19)

    @field_validator("wa_emulator_reachable_media_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [host.strip().lower() for host in value.split(",") if host.strip()]
        return value

    @field_validator("wa_emulator_templates_file", mode="before")
    @classmethod
    def _no_file(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("wa_emulator_webhook_retry_ms", mode="before")
    @classmethod
    def _retries(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("wa_emulator_webhook_retry_ms")
    @classmethod
    def _bounded(cls, value: list[int]) -> list[int]:
        return check_retry_schedule(value)


def check_retry_schedule(delays: list[int]) -> list[int]:
    """Refuse a redelivery schedule that is unbounded in count or in wait."""
    if len(delays) > MAX_WEBHOOK_RETRIES:
        raise ValueError(f"at most {MAX_WEBHOOK_RETRIES} webhook retries")
    if any(not 0 <= delay <= MAX_WEBHOOK_RETRY_MS for delay in delays):
        raise ValueError(f"each webhook retry wait must be 0..{MAX_WEBHOOK_RETRY_MS} ms")
    return delays
