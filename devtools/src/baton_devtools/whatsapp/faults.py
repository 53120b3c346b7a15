"""Injected failures and latency for the messages endpoint (`POST /_emulator/faults`)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from baton_devtools.whatsapp.errors import GraphError, spec_for

# Meta's `error_data.details` for the codes tests inject most.
DETAILS: dict[int, str] = {
    4: "Application request limit reached",
    80007: "WhatsApp Business Account rate limit hit",
    130429: "Cloud API message throughput has been reached.",
    131000: "Something went wrong. Please try again.",
    131016: "A service is temporarily unavailable. Please try again later.",
    131026: "Message failed to send because the recipient is not on WhatsApp or cannot receive it.",
    131047: (
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number."
    ),
    131056: "Too many messages sent from the sender phone number to the same recipient.",
    133004: "Server is temporarily unavailable. Please try again later.",
}


class FaultRule(BaseModel):
    """One injected fault: the next `count` matching send calls fail and/or wait.

    Attributes:
        code: Graph error code to answer with; None for a latency-only rule.
        count: how many matching calls it applies to (default 1 with a code, else unlimited).
        http_status: HTTP status override (default from Meta's table).
        message: `error.message` override (default "(#code) Title").
        details: `error_data.details` override.
        error_subcode: optional `error_subcode`.
        to: only calls to this recipient (digits, `+` ignored).
        type: only calls of this message type ("read" for mark-as-read).
        delay_ms: latency added before answering.
        mode: "sync" answers with the error; "webhook" answers 200 and delivers a failed status.
    """

    model_config = ConfigDict(extra="forbid")

    code: int | None = None
    count: int | None = Field(default=None, ge=1)
    http_status: int | None = Field(default=None, ge=400, le=599)
    message: str | None = None
    details: str | None = None
    error_subcode: int | None = None
    to: str | None = None
    type: str | None = None
    delay_ms: int = Field(default=0, ge=0)
    mode: Literal["sync", "webhook"] = "sync"

    @model_validator(mode="after")
    def _needs_effect(self) -> Self:
        if self.code is None and self.delay_ms == 0:
            raise ValueError("a fault needs a `code`, a `delay_ms`, or both")
        return self

    def matches(self, to: str | None, message_type: str) -> bool:
        """Whether this rule applies to a call to `to` of `message_type`."""
        if self.to is not None and self.to.lstrip("+") != to:
            return False
        return self.type is None or self.type == message_type

    def error(self) -> GraphError:
        """The Graph error this rule answers with."""
        code = self.code if self.code is not None else 131000
        details = self.details or DETAILS.get(code) or spec_for(code).title
        return GraphError(
            code,
            details,
            message=self.message,
            http_status=self.http_status,
            subcode=self.error_subcode,
        )


class FaultBook:
    """Active fault rules, consumed first-match-first by send calls."""

    def __init__(self) -> None:
        self._rules: list[tuple[FaultRule, int | None]] = []

    def add(self, rule: FaultRule) -> None:
        """Activate `rule`."""
        remaining = rule.count if rule.count is not None else (1 if rule.code is not None else None)
        self._rules.append((rule, remaining))

    def clear(self) -> None:
        """Remove every rule."""
        self._rules.clear()

    def take(self, to: str | None, message_type: str) -> FaultRule | None:
        """Consume and return the first rule that matches this call, if any."""
        for index, (rule, remaining) in enumerate(self._rules):
            if not rule.matches(to, message_type):
                continue
            if remaining is None:
                return rule
            if remaining <= 1:
                del self._rules[index]
            else:
                self._rules[index] = (rule, remaining - 1)
            return rule
        return None

    def snapshot(self) -> list[dict[str, object]]:
        """The active rules with their remaining counts (None = unlimited)."""
        return [
            {**rule.model_dump(exclude_none=True), "remaining": remaining}
            for rule, remaining in self._rules
        ]
