"""How the sender classifies what went wrong: invalid input, WhatsApp errors, network errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from baton_shared.events import PlatformError

# Codes WhatsApp's error table marks as worth retrying (reference section 7.2).
TRANSIENT_CODES = frozenset({2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004})
TOKEN_CODES = frozenset({0, 190})
PAIR_RATE_CODE = 131056
WINDOW_CLOSED_CODE = 131047
THROUGHPUT_CODE = 130429  # the business number is over its messages per second


class InvalidMessageError(ValueError):
    """The command breaks WhatsApp's rules (limits, missing fields); it is never sent."""


@dataclass(frozen=True)
class WhatsAppError(Exception):
    """An error answer of the Graph API.

    Attributes:
        code: `error.code`.
        title: `error.message` (titles are being deprecated by Meta; kept for operators).
        details: `error.error_data.details`, when present.
        http_status: the HTTP status of the answer.
    """

    code: int
    title: str | None
    details: str | None
    http_status: int

    @classmethod
    def from_response(cls, http_status: int, body: Any) -> WhatsAppError:
        """Parse Graph's `{"error": {...}}` body; anything else becomes code 1 (unknown)."""
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(1, f"HTTP {http_status} without a Graph error body", None, http_status)
        data = error.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        code = error.get("code")
        return cls(
            code if isinstance(code, int) else 1,
            str(error.get("message")) if error.get("message") is not None else None,
            str(details) if details is not None else None,
            http_status,
        )

    @property
    def transient(self) -> bool:
        """Whether WhatsApp says a later retry may succeed (5xx without a code counts too)."""
        return self.code in TRANSIENT_CODES or (self.code == 1 and self.http_status >= 500)

    @property
    def token_error(self) -> bool:
        """Whether the access token is invalid or expired: no send can succeed until fixed."""
        return self.code in TOKEN_CODES

    def as_platform_error(self) -> PlatformError:
        """The error as carried by events."""
        return PlatformError(
            code=self.code, title=self.title, message=self.title, details=self.details
        )


class NotSentError(Exception):
    """No connection to WhatsApp could be had: the request never left (safe to retry)."""


class NetworkError(Exception):
    """The call did not get an answer (connection refused, reset, timeout).

    Attributes:
        maybe_sent: the request may have reached WhatsApp (it failed after being written):
            the API has no idempotency key, so sending it again could send it twice.
    """

    def __init__(self, message: str, *, maybe_sent: bool) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent
