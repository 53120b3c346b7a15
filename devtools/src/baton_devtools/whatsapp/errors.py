"""Graph API error bodies: the codes, HTTP statuses and titles of Meta's error table."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse


@dataclass(frozen=True)
class ErrorSpec:
    """HTTP status and title Meta documents for one error code."""

    http_status: int
    title: str


ERRORS: dict[int, ErrorSpec] = {
    0: ErrorSpec(401, "AuthException"),
    1: ErrorSpec(400, "API Unknown"),
    2: ErrorSpec(503, "API Service"),
    3: ErrorSpec(500, "API Method"),
    4: ErrorSpec(400, "API Too Many Calls"),
    10: ErrorSpec(403, "Permission Denied"),
    100: ErrorSpec(400, "Invalid parameter"),
    190: ErrorSpec(401, "Access token has expired"),
    368: ErrorSpec(403, "Temporarily blocked for policies violations"),
    80007: ErrorSpec(400, "Rate limit issues"),
    130403: ErrorSpec(400, "Business has blocked this user"),
    130429: ErrorSpec(400, "Rate limit hit"),
    130472: ErrorSpec(400, "User's number is part of an experiment"),
    130497: ErrorSpec(403, "Business account is restricted from messaging users in this country"),
    131000: ErrorSpec(500, "Something went wrong"),
    131005: ErrorSpec(403, "Access denied"),
    131008: ErrorSpec(400, "Required parameter is missing"),
    131009: ErrorSpec(400, "Parameter value is not valid"),
    131016: ErrorSpec(503, "Service unavailable"),
    131021: ErrorSpec(400, "Recipient cannot be sender"),
    131026: ErrorSpec(400, "Message Undeliverable"),
    131031: ErrorSpec(403, "Account has been locked"),
    131037: ErrorSpec(400, "WhatsApp provided number needs display name approval"),
    131042: ErrorSpec(400, "Business eligibility payment issue"),
    131045: ErrorSpec(400, "Incorrect certificate"),
    131047: ErrorSpec(400, "Re-engagement message"),
    131048: ErrorSpec(400, "Spam rate limit hit"),
    131049: ErrorSpec(
        400, "This message was not delivered to maintain healthy ecosystem engagement"
    ),
    131050: ErrorSpec(400, "User stopped marketing messages"),
    131051: ErrorSpec(400, "Unsupported message type"),
    131052: ErrorSpec(400, "Media download error"),
    131053: ErrorSpec(400, "Media upload error"),
    131056: ErrorSpec(400, "(Business Account, Consumer Account) pair rate limit hit"),
    131057: ErrorSpec(500, "Account in maintenance mode"),
    131064: ErrorSpec(400, "Limit due to template classification violations"),
    132000: ErrorSpec(400, "Template Param Count Mismatch"),
    132001: ErrorSpec(404, "Template does not exist"),
    132005: ErrorSpec(400, "Template Hydrated Text Too Long"),
    132007: ErrorSpec(400, "Template Format Character Policy Violated"),
    132012: ErrorSpec(400, "Template Parameter Format Mismatch"),
    132015: ErrorSpec(400, "Template is Paused"),
    132016: ErrorSpec(400, "Template is Disabled"),
    133004: ErrorSpec(503, "Server Temporarily Unavailable"),
    133015: ErrorSpec(400, "Please wait a few minutes before attempting to register this number"),
    135000: ErrorSpec(400, "Generic user error"),
}

UNKNOWN_SPEC = ErrorSpec(400, "Error")


def spec_for(code: int) -> ErrorSpec:
    """Return Meta's HTTP status and title for `code` (400 "Error" when unknown)."""
    return ERRORS.get(code, UNKNOWN_SPEC)


class GraphError(Exception):
    """A Graph API error, rendered as `{"error": {...}}` by the app's exception handler."""

    def __init__(
        self,
        code: int,
        details: str,
        *,
        message: str | None = None,
        http_status: int | None = None,
        subcode: int | None = None,
        error_type: str = "OAuthException",
        whatsapp: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        spec = spec_for(code)
        self.code = code
        self.details = details
        self.message = message or f"(#{code}) {spec.title}"
        self.http_status = http_status or spec.http_status
        self.subcode = subcode
        self.error_type = error_type
        self.whatsapp = whatsapp
        self.headers = headers
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """Return the JSON body Graph sends for this error."""
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.whatsapp:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)[:22]
        return {"error": error}


def param_error(message: str) -> GraphError:
    """Code 100 with a specific message, as Graph reports malformed parameters."""
    return GraphError(100, message, message=f"(#100) {message}")


def invalid_value(details: str) -> GraphError:
    """Code 131009 "Parameter value is not valid" with `details`."""
    return GraphError(131009, details)


def missing_value(details: str) -> GraphError:
    """Code 131008 "Required parameter is missing" with `details`."""
    return GraphError(131008, details)


def unknown_object(object_id: str, method: str) -> GraphError:
    """Graph's error for an id that does not exist (code 100, subcode 33)."""
    text = (
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read "
        "the Graph API documentation at https://developers.facebook.com/docs/graph-api"
    )
    return GraphError(
        100, text, message=text, subcode=33, error_type="GraphMethodException", whatsapp=False
    )


async def graph_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Render a `GraphError` the way Graph does."""
    assert isinstance(exc, GraphError)
    return JSONResponse(exc.body(), status_code=exc.http_status, headers=exc.headers)
