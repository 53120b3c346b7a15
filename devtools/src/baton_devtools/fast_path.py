"""One POST route served without FastAPI's routing: what an emulator spends per call.

The emulators share the machine with the services they serve, so their CPU per call counts
against those services' benchmarks; most of it went to FastAPI and Starlette (exception and
exit-stack middlewares, route matching, dependency solving), several times the work of the
call itself. `PostFastPath` is an ASGI middleware that serves `POST` requests whose path
matches one pattern by calling the emulator's own route function (same validation, limits,
faults, records and answers), and passes everything else to the app. It sits inside
`ServerErrorMiddleware`, so an unexpected exception still becomes the app's 500.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Serve = Callable[[re.Match[str], Request], Awaitable[Response]]


class PostFastPath:
    """Serves `POST` requests whose path matches `pattern` with `serve`; passes every other
    request to `app`."""

    def __init__(self, app: ASGIApp, *, pattern: re.Pattern[str], serve: Serve) -> None:
        self.app = app
        self.pattern = pattern
        self.serve = serve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            self.pattern.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        response = await self.serve(match, Request(scope, receive))
        await response(scope, receive, send)
