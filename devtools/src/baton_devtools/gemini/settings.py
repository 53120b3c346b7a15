"""Settings of the Gemini API emulator, read from the environment (and `.env`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GeminiEmulatorSettings(BaseSettings):
    """Environment of the Gemini emulator.

    Attributes:
        gemini_emulator_port: port `main` listens on (`GEMINI_EMULATOR_PORT`).
        gemini_emulator_api_key: when set, the only API key accepted (others get
            API_KEY_INVALID); when unset, any non-empty key is accepted.
        baton_nice: CPU niceness to run at (`BATON_NICE`, 0..19), as for the services.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    gemini_emulator_port: int = Field(default=8091, ge=1, le=65535)
    gemini_emulator_api_key: str | None = None
    baton_nice: int = Field(default=0, ge=0, le=19)
