"""Errors an operator can act on, each with its HTTP status and a machine-readable code."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException


class ErrorOut(BaseModel):
    """Every error answer: a machine-readable code, what went wrong, and what to do about it."""

    error: str = Field(description="machine-readable code, e.g. `conflict`, `window_closed`")
    detail: str | list[dict[str, Any]] = Field(
        description="what went wrong; for `validation_error`, one entry per invalid field"
    )
    hint: str | None = Field(None, description="what to do about it, when there is something")


_DESCRIPTIONS = {
    400: "the body is not valid JSON, or parameters that exclude each other were both given",
    401: "no valid bearer token",
    403: "the operator's role does not allow this",
    404: "no such conversation",
    409: "the conversation is held by another operator",
    413: "the request body is too large",
    422: "invalid request (field errors) or one that cannot be carried out",
    503: "Redis is unavailable: the control state could not be confirmed; retry",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` documenting the given error statuses with the `ErrorOut` body."""
    return {s: {"model": ErrorOut, "description": _DESCRIPTIONS[s]} for s in statuses}


class ApiError(Exception):
    """An error answered as `{"error": code, "detail": ..., "hint"?: ...}`."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, hint: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


class UnavailableError(ApiError):
    """The service cannot take this request now; retrying later may succeed."""

    status = 503

    def __init__(self, detail: str, *, code: str = "unavailable", hint: str | None = None):
        super().__init__(detail, hint=hint)
        self.code = code


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


# invalid byte sequence (NUL in text), untranslatable character (\u0000 in jsonb)
_NUL_REFUSED = frozenset({"22021", "22P05"})


def install(app: FastAPI) -> None:
    """Register the handlers that turn these errors (and Redis outages) into JSON answers."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        body: dict[str, str] = {"error": exc.code, "detail": exc.detail}
        if exc.hint:
            body["hint"] = exc.hint
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        # Starlette's and FastAPI's own errors (unreadable body, unknown path) in the same shape.
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
        return JSONResponse(
            {"error": code, "detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Field errors without the offending input (it can be large, or a secret).
        errors = [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in exc.errors()]
        body = {"error": "validation_error", "detail": jsonable_encoder(errors)}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(DBAPIError)
    async def _unstorable(_: Request, exc: DBAPIError) -> JSONResponse:
        # PostgreSQL refuses NUL (U+0000) in text and jsonb: the input's fault, not ours. The
        # transaction was rolled back: nothing was written. Anything else is a server error.
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if sqlstate not in _NUL_REFUSED:
            raise exc
        return JSONResponse(
            {
                "error": "invalid_text",
                "detail": "text contains a NUL character (U+0000), which cannot be stored",
            },
            status_code=422,
        )

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
