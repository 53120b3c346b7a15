"""At start: is `GEMINI_MODEL` a model the Gemini API serves?

A mistyped model name is not a settings error pydantic can see, and the emulator used to
serve any name, so it worked in every offline run and failed every turn in production (each
turn: its retries, then the apology and a person). `baton-agent serve` asks the API once
(`GET /v1beta/models/{model}`, the REST `models.get`) and refuses to start when the answer
is that no such model exists. An API it cannot reach, or any other answer, only logs a
warning: an outage at start must not keep the agent down.
"""

from __future__ import annotations

import httpx

from baton_agent.settings import AgentSettings

GOOGLE = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"  # the version langchain-google-genai calls


class UnknownModelError(Exception):
    """The Gemini API says `GEMINI_MODEL` is not a model it serves for generateContent."""


def check_model(settings: AgentSettings, *, timeout: float = 5.0) -> str | None:
    """None when the API serves the model; a warning when it could not tell; raises
    UnknownModelError when it answered that the model does not exist (or cannot answer)."""
    base = (settings.gemini_base_url or GOOGLE).rstrip("/")
    model = settings.gemini_model.removeprefix("models/")
    url = f"{base}/{API_VERSION}/models/{model}"
    headers = {"x-goog-api-key": settings.google_api_key or "dev-unset"}
    try:
        got = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return f"could not check GEMINI_MODEL {model!r} at {base}: {type(exc).__name__}"
    if got.status_code == 404:
        raise UnknownModelError(
            f"GEMINI_MODEL {model!r} is not a model {base} serves: {_message(got)}"
        )
    if got.status_code != 200:
        return f"could not check GEMINI_MODEL {model!r} at {base}: HTTP {got.status_code}"
    try:
        methods = got.json().get("supportedGenerationMethods")
    except (ValueError, AttributeError):
        return None
    if isinstance(methods, list) and "generateContent" not in methods:
        raise UnknownModelError(
            f"GEMINI_MODEL {model!r} does not answer chat requests (generateContent) at {base}"
        )
    return None


def _message(response: httpx.Response) -> str:
    """The API's error message, or the status line."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"
