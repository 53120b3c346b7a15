"""The Gemini chat model: always `ChatGoogleGenerativeAI`, pointed at Google or the emulator."""

from __future__ import annotations

from langchain_google_genai import ChatGoogleGenerativeAI

from baton_agent.settings import AgentSettings


def build_model(settings: AgentSettings) -> ChatGoogleGenerativeAI:
    """The client from settings; retries are ours (with backoff), so the SDK tries once."""
    return ChatGoogleGenerativeAI(
        model=settings.gemini_model,
        # Development and test runs against the emulator may leave the key unset.
        google_api_key=settings.google_api_key or "dev-unset",
        base_url=settings.gemini_base_url,
        temperature=settings.gemini_temperature,
        timeout=settings.gemini_timeout_seconds,
        max_retries=1,
    )
