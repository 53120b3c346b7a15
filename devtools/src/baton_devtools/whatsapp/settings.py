"""Settings of the WhatsApp Cloud API emulator, read from the environment (and `.env`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    baton_nice: int = Field(default=0, ge=0, le=19)
