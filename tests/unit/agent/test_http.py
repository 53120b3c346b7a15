"""The agent's lean httpx2 transport (its HTTP/1.1 core is tested in
tests/unit/shared/test_http1.py) against a raw socket server, and its wiring into the SDK."""

from __future__ import annotations

import gzip

import httpx2
import pytest

from baton_agent.http import LeanTransport
from baton_agent.llm import build_models, client_args
from baton_agent.settings import AgentSettings
from baton_shared.http1 import PROXY_VARIABLES
from baton_shared.testing.raw_http import RawHttpServer, chunked, fixed

OK = b'{"candidates":[]}'


async def post(
    url: str, transport: LeanTransport, within: float = 5, times: int = 1
) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=transport, timeout=within) as client:
        for _ in range(times):
            response = await client.post(
                f"{url}/v1beta/models/m:generateContent?x=1", json={"a": 1}
            )
    return response


@pytest.mark.parametrize(
    "answer",
    [fixed(200, OK), chunked(OK), fixed(200, gzip.compress(OK), "Content-Encoding: gzip")],
    ids=["length", "chunked", "gzip"],
)
async def test_requests_and_answers_are_httpx2s(answer: bytes) -> None:
    async with RawHttpServer(lambda _: answer) as server:
        response = await post(server.url, LeanTransport(), times=2)
    assert (response.status_code, response.content) == (200, OK)
    assert response.http_version == "HTTP/1.1"
    assert server.connections == 1
    request = server.requests[0]
    assert request.startswith(b"POST /v1beta/models/m:generateContent?x=1 HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in request.lower()
    assert request.endswith(b'{"a":1}')


async def test_errors_are_httpx2_errors() -> None:
    async with RawHttpServer(lambda _: fixed(200, OK), delay=1) as slow:
        with pytest.raises(httpx2.ReadTimeout):
            await post(slow.url, LeanTransport(), within=0.1)
    async with RawHttpServer(lambda _: b"SPDY/3 200 OK\r\n\r\n") as garbage:
        with pytest.raises(httpx2.RemoteProtocolError):
            await post(garbage.url, LeanTransport())
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nConnection: close\r\n\r\n{"
    async with RawHttpServer(lambda _: cut) as server:
        with pytest.raises(httpx2.RemoteProtocolError):
            await post(server.url, LeanTransport())
    with pytest.raises(httpx2.ConnectError):
        await post(server.url, LeanTransport())


def test_the_sdk_sends_through_the_lean_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """google-genai keeps a caller's transport (`client_args={"transport": ...}`) for its
    async client: if an upgrade stopped doing so, the agent would silently lose it."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    settings = AgentSettings(
        database_url="postgresql+asyncpg://u@localhost/db",
        redis_url="redis://localhost:6379/0",
        baton_env="test",
        GOOGLE_API_KEY="k",
        AGENT_CONCURRENCY=1000,
    )
    assert isinstance(client_args(settings)["transport"], LeanTransport)
    [model] = build_models(settings)
    client = model.async_client._api_client._async_httpx_client  # type: ignore[union-attr]
    assert isinstance(client._transport, LeanTransport)
