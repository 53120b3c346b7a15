"""Errors an operator can act on, each with its HTTP status and a machine-readable code."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError


class ApiError(Exception):
    """An error answered as `{"error": code, "detail": ..., "hint"?: ...}`."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, hint: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


class ControlConflictError(ApiError):
    """The action conflicts with who holds the conversation."""

    status = 409
    code = "conflict"


class ForbiddenError(ApiError):
    """The operator's role does not allow the action."""

    status = 403
    code = "forbidden"


class NotFoundError(ApiError):
    """No such conversation."""

    status = 404
    code = "not_found"


class UnprocessableError(ApiError):
    """The request is well-formed but cannot be carried out (e.g. the 24-hour window)."""

    status = 422
    code = "unprocessable"

    def __init__(self, detail: str, *, code: str = "unprocessable", hint: str | None = None):
        super().__init__(detail, hint=hint)
        self.code = code


def install(app: FastAPI) -> None:
    """Register the handlers that turn these errors (and Redis outages) into JSON answers."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        body: dict[str, str] = {"error": exc.code, "detail": exc.detail}
        if exc.hint:
            body["hint"] = exc.hint
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(RedisError)
    async def _redis_down(_: Request, exc: RedisError) -> JSONResponse:
        # The change may be committed in PostgreSQL without its fencing copy: never answer 200
        # then. Repeating the request is safe (a repeated takeover is a no-op that re-syncs).
        return JSONResponse(
            {
                "error": "redis_unavailable",
                "detail": "the control state could not be confirmed in Redis; retry",
            },
            status_code=503,
        )
