"""Request dependencies of the Gemini emulator: its state and API-key checking."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from baton_devtools.gemini.errors import NO_KEY_MESSAGE, GoogleApiError, api_key_invalid
from baton_devtools.gemini.state import GeminiState


def get_state(request: Request) -> GeminiState:
    """The app's `GeminiState`."""
    state = request.app.state.emulator
    assert isinstance(state, GeminiState)
    return state


StateDep = Annotated[GeminiState, Depends(get_state)]


def check_api_key(request: Request, state: GeminiState) -> None:
    """Require a key in `x-goog-api-key` or `?key=`: missing 403, wrong 400 API_KEY_INVALID."""
    key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
    if not key:
        raise GoogleApiError(403, NO_KEY_MESSAGE)
    expected = state.settings.gemini_emulator_api_key
    if expected is not None and not hmac.compare_digest(key.encode(), expected.encode()):
        raise api_key_invalid()
