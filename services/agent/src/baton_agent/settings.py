"""Agent settings: the Gemini client, the configuration files, and turn concurrency."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from baton_shared.settings import BaseServiceSettings

# The defaults shipped inside the package, so an installed wheel (the image) has them too.
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent / "defaults"


class AgentSettings(BaseServiceSettings):
    """Settings of the agent service.

    Attributes:
        port: HTTP port of `/health` and `/metrics` (`AGENT_PORT`).
        google_api_key: Gemini API key (`GOOGLE_API_KEY`); any value works with the emulator.
        gemini_model: model name (`GEMINI_MODEL`).
        gemini_base_url: base URL of the Gemini API; unset means Google's (`GEMINI_BASE_URL`).
        gemini_timeout_seconds: timeout of one model request (`GEMINI_TIMEOUT_SECONDS`).
        gemini_retries: attempts per model call before the customer gets an apology
            (`GEMINI_RETRIES`).
        gemini_retry_backoff_seconds: first backoff between attempts, doubled each time
            (`GEMINI_RETRY_BACKOFF_SECONDS`).
        gemini_temperature: sampling temperature (`GEMINI_TEMPERATURE`).
        gemini_http_client: what carries the Gemini client's requests: `lean` (a keep-alive
            HTTP/1.1 transport, the cheapest), `httpx` (httpx2's own, honours proxy settings),
            or `auto`: httpx when `HTTPS_PROXY`/`ALL_PROXY` is set, else lean
            (`GEMINI_HTTP_CLIENT`).
        system_prompt_file: the system prompt template (`AGENT_SYSTEM_PROMPT_FILE`).
        business_profile_file: name, tone, hours, policies, languages
            (`AGENT_BUSINESS_PROFILE_FILE`).
        media_catalogue_file: media the agent may send, YAML or JSON
            (`AGENT_MEDIA_CATALOGUE_FILE`).
        numbers_file: optional YAML or JSON giving business numbers (by `phone_number_id`)
            their own system prompt, profile or catalogue files; the three above serve every
            other number (`AGENT_NUMBERS_FILE`).
        history_messages: most recent thread messages shown to the model
            (`AGENT_HISTORY_MESSAGES`).
        thread_messages: most messages a conversation's thread keeps; older ones are dropped
            at the next turn, so a conversation's checkpoint (written at every step) stays
            the same size however long the conversation lives. The operator transcript keeps
            everything. At least `history_messages` (`AGENT_THREAD_MESSAGES`).
        max_model_calls: model calls per turn, tool rounds included (`AGENT_MAX_MODEL_CALLS`).
        max_answers_per_hour: AI answers one conversation may get within an hour under one
            control epoch; the turn after that is not shown to the model: the customer gets
            the apology and the conversation goes to a person (`pending_human`), because a
            conversation that busy is most often another bot answering ours (an
            auto-responder loop that would otherwise run, and cost, for ever), or abuse.
            A takeover or handback starts a new count. 0: no limit
            (`AGENT_MAX_ANSWERS_PER_HOUR`).
        concurrency: turns processed at once by this process, and the size of the Gemini
            client's connection pool (`AGENT_CONCURRENCY`). A turn spends nearly all its
            time waiting on the model, so this, not CPU, bounds turns per second.
        checkpoint_pool_size: connections of the checkpointer's pool (`AGENT_DB_POOL_SIZE`);
            each checkpoint read or write holds one for a few milliseconds, never across a
            model call, so a handful serve hundreds of concurrent turns. The agent's own
            tables use `DB_POOL_SIZE`, as every service's do (this field used to replace
            that one, so `DB_POOL_SIZE` was ignored).
        turn_timeout_seconds: the longest a turn may spend on the model, retries and tool
            rounds included; once past it, no model call or retry starts and the customer
            gets the apology, a person the conversation (`AGENT_TURN_TIMEOUT_SECONDS`). It
            bounds how long a live turn runs, which `RECLAIM_IDLE_MS` and the buffer's
            `BUFFER_STUCK_TURN_SECONDS` must exceed.
        reclaim_idle_ms: a turn pending this long is taken over from a (dead) replica; more
            than `turn_timeout_seconds` (checked at start), or a turn still running would be
            taken over and run twice at once (`RECLAIM_IDLE_MS`).
        checkpoint_history_hours: a conversation's superseded checkpoints (LangGraph's step
            history; Baton reads only the latest) are deleted once the oldest of them is this
            old; 0 keeps them for ever (`AGENT_CHECKPOINT_HISTORY_HOURS`).
        typing_indicator: when a turn is answered, first mark the customer's latest message
            read and show them the typing indicator while the model works
            (`AGENT_TYPING_INDICATOR`).
    """

    port: int = Field(8083, ge=0, le=65535, validation_alias="AGENT_PORT")
    google_api_key: str = Field("", validation_alias="GOOGLE_API_KEY")
    gemini_model: str = Field("gemini-2.5-flash", min_length=1, validation_alias="GEMINI_MODEL")
    gemini_base_url: str | None = Field(None, validation_alias="GEMINI_BASE_URL")
    gemini_timeout_seconds: float = Field(30.0, gt=0, validation_alias="GEMINI_TIMEOUT_SECONDS")
    gemini_retries: int = Field(3, ge=1, le=10, validation_alias="GEMINI_RETRIES")
    gemini_retry_backoff_seconds: float = Field(
        1.0, ge=0, validation_alias="GEMINI_RETRY_BACKOFF_SECONDS"
    )
    gemini_temperature: float = Field(0.3, ge=0, le=2, validation_alias="GEMINI_TEMPERATURE")
    gemini_http_client: Literal["auto", "lean", "httpx"] = Field(
        "auto", validation_alias="GEMINI_HTTP_CLIENT"
    )
    system_prompt_file: Path = Field(
        DEFAULT_CONFIG_DIR / "system_prompt.md", validation_alias="AGENT_SYSTEM_PROMPT_FILE"
    )
    business_profile_file: Path = Field(
        DEFAULT_CONFIG_DIR / "business_profile.yaml",
        validation_alias="AGENT_BUSINESS_PROFILE_FILE",
    )
    media_catalogue_file: Path = Field(
        DEFAULT_CONFIG_DIR / "media_catalogue.yaml",
        validation_alias="AGENT_MEDIA_CATALOGUE_FILE",
    )
    numbers_file: Path | None = Field(None, validation_alias="AGENT_NUMBERS_FILE")
    history_messages: int = Field(40, ge=2, le=1000, validation_alias="AGENT_HISTORY_MESSAGES")
    thread_messages: int = Field(200, ge=2, le=10_000, validation_alias="AGENT_THREAD_MESSAGES")
    max_model_calls: int = Field(4, ge=1, le=20, validation_alias="AGENT_MAX_MODEL_CALLS")
    max_answers_per_hour: int = Field(
        60, ge=0, le=100_000, validation_alias="AGENT_MAX_ANSWERS_PER_HOUR"
    )
    concurrency: int = Field(256, ge=1, le=4096, validation_alias="AGENT_CONCURRENCY")
    checkpoint_pool_size: int = Field(10, ge=1, le=100, validation_alias="AGENT_DB_POOL_SIZE")
    turn_timeout_seconds: float = Field(
        90.0, gt=0, le=3600, validation_alias="AGENT_TURN_TIMEOUT_SECONDS"
    )
    reclaim_idle_ms: int = Field(default=120_000, ge=10)
    typing_indicator: bool = Field(True, validation_alias="AGENT_TYPING_INDICATOR")
    checkpoint_history_hours: float = Field(
        24, ge=0, validation_alias="AGENT_CHECKPOINT_HISTORY_HOURS"
    )

    @model_validator(mode="after")
    def _live_turns_are_not_reclaimed(self) -> AgentSettings:
        if self.reclaim_idle_ms <= self.turn_timeout_seconds * 1000:
            raise ValueError(
                f"RECLAIM_IDLE_MS ({self.reclaim_idle_ms}) must exceed "
                f"AGENT_TURN_TIMEOUT_SECONDS ({self.turn_timeout_seconds:g} s): a turn still "
                "running would be taken over by another replica and run twice at once"
            )
        return self

    @model_validator(mode="after")
    def _thread_holds_history(self) -> AgentSettings:
        if self.thread_messages < self.history_messages:
            raise ValueError(
                f"AGENT_THREAD_MESSAGES ({self.thread_messages}) must be at least "
                f"AGENT_HISTORY_MESSAGES ({self.history_messages}): the model is shown "
                "messages the thread keeps"
            )
        return self

    def secret_fields(self) -> tuple[str, ...]:
        """The Gemini API key must be real outside development."""
        return ("google_api_key",)
