"""The Gemini chat model: always `ChatGoogleGenerativeAI`, pointed at Google or the emulator."""

from __future__ import annotations

import math
from typing import Any

import httpx2
from langchain_google_genai import ChatGoogleGenerativeAI

from baton_agent.http import LeanTransport
from baton_agent.settings import AgentSettings
from baton_shared.http1 import choose_http_client

# Connections per client. httpx2's pool walks all its connections on every request and
# every release (expiry checks), so one pool of 1,000 costs O(1,000) per call; clients of
# at most this many connections keep that walk short.
SHARD_CONNECTIONS = 64


def shard_count(settings: AgentSettings) -> int:
    """How many clients share `AGENT_CONCURRENCY` model calls (one with the lean transport,
    which keeps no walk-every-connection pool)."""
    if choose_http_client(settings.gemini_http_client) == "lean":
        return 1
    return max(1, math.ceil(settings.concurrency / SHARD_CONNECTIONS))


def connection_limits(settings: AgentSettings) -> httpx2.Limits:
    """One HTTP connection per turn in flight (a turn makes one model call at a time).

    The google-genai SDK sends through httpx2 (its default backend), whose default pool of
    100 connections would cap the agent at 100 concurrent model calls: 50 turns/s at 2 s
    per answer, whatever `AGENT_CONCURRENCY` says. The calls are spread over
    `shard_count` clients, least busy first (`graph.nodes`), so each needs its share.
    """
    share = math.ceil(settings.concurrency / shard_count(settings))
    return httpx2.Limits(
        max_connections=share, max_keepalive_connections=share, keepalive_expiry=30.0
    )


def client_args(settings: AgentSettings) -> dict[str, Any]:
    """The SDK's httpx2 client arguments: the lean transport, or httpx2's pool sized to
    `AGENT_CONCURRENCY` (an httpx2 object here also pins the SDK to the httpx2 backend)."""
    if choose_http_client(settings.gemini_http_client) == "lean":
        return {"transport": LeanTransport()}
    return {"limits": connection_limits(settings)}


def build_models(settings: AgentSettings) -> list[ChatGoogleGenerativeAI]:
    """`shard_count` identical clients, each with its own connection pool."""
    return [build_model(settings) for _ in range(shard_count(settings))]


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
        client_args=client_args(settings),
    )
