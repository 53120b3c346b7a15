"""Google API error bodies: `{"error": {"code", "message", "status", "details"?}}`."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
    ),
    500: (
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting"
    ),
    503: "The model is overloaded. Please try again later.",
    504: "The request timed out. Please try again.",
}
RETRY_INFO = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}
NO_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
BAD_KEY_MESSAGE = "API key not valid. Please pass a valid API key."


class GoogleApiError(Exception):
    """An error the emulator answers in Google's JSON error shape."""

    def __init__(
        self, code: int, message: str | None = None, details: list[dict[str, Any]] | None = None
    ) -> None:
        self.code = code
        self.status = STATUS_NAMES.get(code, "UNKNOWN")
        self.message = message or DEFAULT_MESSAGES.get(code, "Unknown error.")
        self.details = details
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid_argument(message: str) -> GoogleApiError:
    """400 INVALID_ARGUMENT with `message`."""
    return GoogleApiError(400, message)


def fault_error(code: int, message: str | None = None) -> GoogleApiError:
    """An injected error; 429 carries RetryInfo like the real quota error."""
    return GoogleApiError(code, message, [RETRY_INFO] if code == 429 else None)


def api_key_invalid() -> GoogleApiError:
    """400 API_KEY_INVALID, as Google answers a wrong key."""
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }
    localized = {
        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
        "locale": "en-US",
        "message": BAD_KEY_MESSAGE,
    }
    return GoogleApiError(400, BAD_KEY_MESSAGE, [info, localized])


async def google_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Render a `GoogleApiError`."""
    assert isinstance(exc, GoogleApiError)
    return JSONResponse(exc.body(), status_code=exc.code)
