"""The sender's Graph API client over its two transports (the lean one's HTTP/1.1 core is
tested in tests/unit/shared/test_http1.py), against a raw socket server."""

from __future__ import annotations

import asyncio
import gzip

import pytest

from baton_sender.whatsapp.client import WhatsAppClient
from baton_sender.whatsapp.errors import NetworkError, WhatsAppError
from baton_sender.whatsapp.http import Http11Pool
from baton_shared.testing.raw_http import RawHttpServer, fixed

OK = b'{"messages":[{"id":"wamid.1"}]}'


@pytest.mark.parametrize("kind", ["lean", "httpx"])
async def test_keep_alive_request_shape_and_reuse(kind: str) -> None:
    async with RawHttpServer(lambda _: fixed(200, OK)) as server:
        client = WhatsAppClient(server.url, "v21.0", "tok", http_client=kind)  # type: ignore[arg-type]
        assert client.http_client == kind
        for _ in range(3):
            assert await client.send("123", {"text": {"body": "héllo"}}) == "wamid.1"
        await client.aclose()
    assert server.connections == 1
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().lower().split("\r\n")
    assert lines[0] == "post /v21.0/123/messages http/1.1"
    assert "authorization: bearer tok" in lines
    assert "content-type: application/json" in lines
    assert body.decode() == '{"text":{"body":"héllo"}}'


@pytest.mark.parametrize("kind", ["lean", "httpx"])
async def test_gzip_and_error_answers(kind: str) -> None:
    error = b'{"error":{"code":131026,"message":"(#131026) Message undeliverable"}}'
    answers = iter([fixed(200, gzip.compress(OK), "Content-Encoding: gzip"), fixed(400, error)])
    async with RawHttpServer(lambda _: next(answers)) as server:
        client = WhatsAppClient(server.url, "v21.0", "tok", http_client=kind)  # type: ignore[arg-type]
        assert await client.send("1", {}) == "wamid.1"
        with pytest.raises(WhatsAppError) as refused:
            await client.send("1", {})
        await client.aclose()
    assert (refused.value.code, refused.value.http_status) == (131026, 400)


async def test_an_answer_cut_short_is_a_network_error() -> None:
    cut = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 99\r\n\r\n{"
    async with RawHttpServer(lambda _: cut) as server:
        client = WhatsAppClient(server.url, "v21.0", "tok")
        with pytest.raises(NetworkError, match="HttpProtocolError"):  # closed mid-body
            await client.send("1", {})
        await client.aclose()


async def test_no_answer_in_time_and_nobody_listening() -> None:
    async with RawHttpServer(lambda _: fixed(200, OK), delay=5) as server:
        client = WhatsAppClient(server.url, "v21.0", "tok", timeout=0.2)
        with pytest.raises(NetworkError, match="TimeoutError"):
            await client.send("1", {})
        await client.aclose()
    gone = WhatsAppClient(server.url, "v21.0", "tok")
    with pytest.raises(NetworkError):
        await gone.send("1", {})


def test_pool_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="http"):
        Http11Pool("ftp://x", {}, max_connections=1, timeout=1)


async def test_httpx_transport_reports_network_errors() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    gone = WhatsAppClient(f"http://127.0.0.1:{port}", "v21.0", "tok", http_client="httpx")
    with pytest.raises(NetworkError):
        await gone.send("1", {})
    await gone.aclose()
