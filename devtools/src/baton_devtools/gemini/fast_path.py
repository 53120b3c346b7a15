"""The model-call endpoint without FastAPI's routing (`baton_devtools.fast_path`): the
emulator's CPU per call counts against the agent's benchmark."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from baton_devtools.fast_path import PostFastPath
from baton_devtools.gemini.errors import GoogleApiError, google_error_handler
from baton_devtools.gemini.routes import model_call
from baton_devtools.gemini.state import GeminiState

_MODEL_PATH = re.compile(r"^/([^/]+)/models/([^/]+)$")


async def _model_call(match: re.Match[str], request: Request) -> Response:
    """`POST /{version}/models/{model}:{method}`, as the route answers it."""
    state = request.app.state.emulator
    assert isinstance(state, GeminiState)
    try:
        return await model_call(match[1], match[2], request, state)
    except GoogleApiError as exc:
        return await google_error_handler(request, exc)


class ModelCallFastPath(PostFastPath):
    """Serves model calls directly; passes every other request to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, pattern=_MODEL_PATH, serve=_model_call)
