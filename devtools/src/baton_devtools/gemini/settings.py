"""Settings of the Gemini API emulator, read from the environment (and `.env`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Every model name the repository uses (the agent's `GEMINI_MODEL` default, compose, tests)
# plus the current stable Gemini models, so a real name works offline and a typo does not.
DEFAULT_MODELS = (
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-2.0-flash-001",
)


class GeminiEmulatorSettings(BaseSettings):
    """Environment of the Gemini emulator.

    Attributes:
        gemini_emulator_port: port `main` listens on (`GEMINI_EMULATOR_PORT`).
        gemini_emulator_api_key: when set, the only API key accepted (others get
            API_KEY_INVALID); when unset, any non-empty key is accepted.
        gemini_emulator_models: the model names served (`GEMINI_EMULATOR_MODELS`, comma
            separated); a call to any other model, or its `models.get`, answers 404
            NOT_FOUND as the API does. Defaults to `DEFAULT_MODELS`.
        baton_nice: CPU niceness to run at (`BATON_NICE`, 0..19), as for the services.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    gemini_emulator_port: int = Field(default=8091, ge=1, le=65535)
    gemini_emulator_api_key: str | None = None
    gemini_emulator_models: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_MODELS, min_length=1
    )
    baton_nice: int = Field(default=0, ge=0, le=19)

    @field_validator("gemini_emulator_models", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        """Accept `a,b` (the environment's form) as well as a list; drop a `models/` prefix."""
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return tuple(
                name.strip().removeprefix("models/")
                for name in value
                if isinstance(name, str) and name.strip()
            )
        return value
