"""Request dependencies shared by the emulator's routes: state, auth and the Graph preamble."""

from __future__ import annotations

import asyncio
import hmac
import re
from typing import Annotated

from fastapi import Depends, Request

from baton_devtools.whatsapp.errors import GraphError, unknown_object
from baton_devtools.whatsapp.state import WaState

_VERSION = re.compile(r"^v\d+\.\d+$")
AUTH_ERROR_MESSAGE = "Invalid OAuth access token - Cannot parse access token"


async def get_state(request: Request) -> WaState:
    """The app's `WaState` (async: a sync dependency would cost a thread-pool hop per call)."""
    state = request.app.state.emulator
    assert isinstance(state, WaState)
    return state


StateDep = Annotated[WaState, Depends(get_state)]


def bearer_token(request: Request) -> str | None:
    """The access token from `Authorization: Bearer` or the `access_token` query parameter."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("access_token")


def authorize(request: Request, state: WaState) -> None:
    """Raise Graph's 401 / code 190 unless the request carries the configured token."""
    token = bearer_token(request)
    expected = state.settings.wa_access_token
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise GraphError(
            190,
            AUTH_ERROR_MESSAGE,
            message=AUTH_ERROR_MESSAGE,
            whatsapp=False,
            headers={
                "WWW-Authenticate": f'OAuth "Facebook Platform" "invalid_token" "{AUTH_ERROR_MESSAGE}"'
            },
        )


async def graph_preamble(
    request: Request, state: WaState, version: str, phone_number_id: str | None = None
) -> None:
    """Checks every Graph call shares: path version, token, phone number id, added latency."""
    if not _VERSION.match(version):
        path = request.url.path
        raise GraphError(2500, f"Unknown path components: {path}",
                         message=f"Unknown path components: {path}", whatsapp=False)  # fmt: skip
    authorize(request, state)
    if phone_number_id is not None and not phone_number_id.isdigit():
        raise unknown_object(phone_number_id, "post")
    if state.config.latency_ms:
        await asyncio.sleep(state.config.latency_ms / 1000)
