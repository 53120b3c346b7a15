"""What the Gemini emulator remembers: received requests and injected faults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from baton_devtools.gemini.settings import GeminiEmulatorSettings

FaultStatus = Literal[400, 403, 404, 429, 500, 503, 504]
# The candidate finish reasons of the API's `FinishReason` that a client must handle.
FinishReason = Literal[
    "STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "MALFORMED_FUNCTION_CALL", "OTHER"
]
# The API's `PromptFeedback.BlockReason` values: why a prompt got no candidates at all.
BlockReason = Literal["SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "IMAGE_SAFETY"]


class GeminiFault(BaseModel):
    """One injected fault for the next `count` model calls.

    Attributes:
        status: HTTP status of the error (429 RESOURCE_EXHAUSTED, 500 INTERNAL, 503 UNAVAILABLE,
            ...); None for a latency-only rule.
        count: calls it applies to (default 1 with a status, unlimited without).
        delay_ms: latency added before answering (a timeout test sets it past the client's).
        message: `error.message` override.
        parts: answer with these content parts instead of the scripted ones: a function call
            with arguments the declaration does not allow, several calls at once, or `[]`,
            a candidate without parts (what the API answers when the model has nothing to
            add, typically after a function response).
        finish_reason: the candidate's `finishReason` (default STOP); with no `parts`, a
            MALFORMED_FUNCTION_CALL, SAFETY, RECITATION or OTHER candidate has no content at
            all, as the API sends it (STOP and MAX_TOKENS: a content without parts); a SAFETY
            candidate carries `safetyRatings`, one of them `blocked`.
        prompt_block_reason: block the prompt itself: the API answers 200 with no
            `candidates`, only `promptFeedback.blockReason` (SAFETY also with
            `safetyRatings`) and the prompt's usage.
    """

    model_config = ConfigDict(extra="forbid")

    status: FaultStatus | None = None
    count: int | None = Field(default=None, ge=1)
    delay_ms: int = Field(default=0, ge=0)
    message: str | None = None
    parts: list[dict[str, Any]] | None = None
    finish_reason: FinishReason | None = None
    prompt_block_reason: BlockReason | None = None

    @model_validator(mode="after")
    def _needs_effect(self) -> Self:
        candidate = self.parts is not None or self.finish_reason is not None
        if self.status is None and self.delay_ms == 0 and not self.answers:
            raise ValueError(
                "a fault needs a `status`, a `delay_ms`, `parts`, a `finish_reason` or a "
                "`prompt_block_reason`"
            )
        if self.status is not None and self.answers:
            raise ValueError(
                "an error `status` has no answer: drop `parts`/`finish_reason`/"
                "`prompt_block_reason`"
            )
        if self.prompt_block_reason is not None and candidate:
            raise ValueError("a blocked prompt has no candidate: drop `parts`/`finish_reason`")
        return self

    @property
    def answers(self) -> bool:
        """Whether it replaces the scripted answer."""
        return (
            self.parts is not None
            or self.finish_reason is not None
            or self.prompt_block_reason is not None
        )


class GeminiState:
    """The emulator's memory; one per app."""

    def __init__(self, settings: GeminiEmulatorSettings) -> None:
        self.settings = settings
        self.models = frozenset(settings.gemini_emulator_models)
        self.requests: list[dict[str, Any]] = []
        self._faults: list[tuple[GeminiFault, int | None]] = []

    def record(self, api_version: str, model: str, method: str, body: Any) -> None:
        """Remember one model call."""
        self.requests.append(
            {
                "api_version": api_version,
                "model": model,
                "method": method,
                "body": body,
                "received_at": datetime.now(UTC).isoformat(),
            }
        )

    def add_fault(self, fault: GeminiFault) -> None:
        """Activate a fault."""
        default = 1 if fault.status is not None or fault.answers else None
        self._faults.append((fault, fault.count if fault.count is not None else default))

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def take_fault(self) -> GeminiFault | None:
        """Consume and return the first active fault, if any."""
        if not self._faults:
            return None
        fault, remaining = self._faults[0]
        if remaining is not None:
            if remaining <= 1:
                self._faults.pop(0)
            else:
                self._faults[0] = (fault, remaining - 1)
        return fault

    def faults_snapshot(self) -> list[dict[str, Any]]:
        """Active faults with their remaining counts (None = unlimited)."""
        return [
            {**fault.model_dump(exclude_none=True), "remaining": remaining}
            for fault, remaining in self._faults
        ]
