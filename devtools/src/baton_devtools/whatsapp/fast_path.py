"""The Graph send endpoint without FastAPI's routing: what the emulator spends per message.

At 1,000 sends/s the emulator's CPU went mostly to FastAPI and Starlette (exception and
exit-stack middlewares, route matching, dependency solving), several times what the send
itself costs. This ASGI middleware serves `POST /{version}/{phone_number_id}/messages` by
calling the same `graph_routes.send_message` (same validation, limits, faults, records and
status webhooks) and renders `GraphError`s with the same handler; everything else, and any
other exception, goes through the app as before (it sits inside `ServerErrorMiddleware`).
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from baton_devtools.whatsapp.errors import GraphError, graph_error_handler
from baton_devtools.whatsapp.graph_routes import send_message
from baton_devtools.whatsapp.state import WaState

_SEND_PATH = re.compile(r"^/([^/]+)/([^/]+)/messages$")


class SendFastPath:
    """Serves the messages endpoint directly; passes every other request to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            _SEND_PATH.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        state = request.app.state.emulator
        assert isinstance(state, WaState)
        try:
            answer = await send_message(match[1], match[2], request, state)
        except GraphError as exc:
            response = await graph_error_handler(request, exc)
        else:
            response = JSONResponse(answer)
        await response(scope, receive, send)
