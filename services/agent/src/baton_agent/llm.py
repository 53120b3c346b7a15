"""The Gemini chat model: always `ChatGoogleGenerativeAI`, pointed at Google or the emulator."""

from __future__ import annotations

import httpx2
from langchain_google_genai import ChatGoogleGenerativeAI

from baton_agent.settings import AgentSettings


def connection_limits(settings: AgentSettings) -> httpx2.Limits:
    """One HTTP connection per turn in flight (a turn makes one model call at a time).

    The google-genai SDK sends through httpx2 (its default backend), whose default pool of
    100 connections would cap the agent at 100 concurrent model calls: 50 turns/s at 2 s
    per answer, whatever `AGENT_CONCURRENCY` says.
    """
    return httpx2.Limits(
        max_connections=settings.concurrency,
        max_keepalive_connections=settings.concurrency,
        keepalive_expiry=30.0,
    )


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
        # An httpx2 object here also pins the SDK to the httpx2 backend.
        client_args={"limits": connection_limits(settings)},
    )
