"""The Graph send endpoint without FastAPI's routing (`baton_devtools.fast_path`): at 1,000
sends/s the emulator's CPU went mostly to FastAPI and Starlette."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from baton_devtools.fast_path import PostFastPath
from baton_devtools.whatsapp.errors import GraphError, graph_error_handler
from baton_devtools.whatsapp.graph_routes import send_message
from baton_devtools.whatsapp.state import WaState

_SEND_PATH = re.compile(r"^/([^/]+)/([^/]+)/messages$")


async def _send(match: re.Match[str], request: Request) -> Response:
    """`POST /{version}/{phone_number_id}/messages`, as the route answers it."""
    state = request.app.state.emulator
    assert isinstance(state, WaState)
    try:
        answer = await send_message(match[1], match[2], request, state)
    except GraphError as exc:
        return await graph_error_handler(request, exc)
    return JSONResponse(answer)


class SendFastPath(PostFastPath):
    """Serves the messages endpoint directly; passes every other request to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, pattern=_SEND_PATH, serve=_send)
