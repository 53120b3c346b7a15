"""The lean HTTP/1.1 core: its answer parser, and its pool against a raw socket server."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import zlib

import pytest

from baton_shared.http1 import (
    PROXY_VARIABLES,
    Answer,
    Http1Pool,
    HttpProtocolError,
    Origin,
    choose_http_client,
    decoded_body,
    parse_answer,
)
from baton_shared.testing import wait_until
from baton_shared.testing.raw_http import RawHttpServer, chunked, fixed

OK = b'{"messages":[{"id":"wamid.1"}]}'
REQUEST = b"POST /v1/x?y=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"


def origin(server: RawHttpServer) -> Origin:
    return ("http", "127.0.0.1", int(server.url.rsplit(":", 1)[1]))


async def send(pool: Http1Pool, server: RawHttpServer) -> Answer:
    connection = await pool.connection(origin(server))
    return await pool.exchange(connection, REQUEST)


def new_pool() -> Http1Pool:
    return Http1Pool(ssl.create_default_context)


@pytest.mark.parametrize("trickle", [False, True], ids=["whole", "trickled"])
@pytest.mark.parametrize(
    "answer",
    [
        fixed(200, OK),
        chunked(OK),
        fixed(200, gzip.compress(OK), "Content-Encoding: gzip"),
        fixed(200, zlib.compress(OK), "Content-Encoding: deflate"),
        b"HTTP/1.1 100 Continue\r\n\r\n" + fixed(200, OK),
    ],
    ids=["length", "chunked", "gzip", "deflate", "interim-100"],
)
async def test_answers_are_read_whole(answer: bytes, trickle: bool) -> None:
    async with RawHttpServer(lambda _: answer, trickle=trickle) as server:
        pool = new_pool()
        got = await send(pool, server)
        await pool.aclose()
    assert (got.status, decoded_body(got), got.keep_alive) == (200, OK, True)
    assert all(name.lower() != b"transfer-encoding" for name, _ in got.headers)
    assert server.requests == [REQUEST]


def test_parse_answer_frames() -> None:
    until_close = bytearray(b"HTTP/1.1 200 OK\r\nX-A: b\r\n\r\n{}")
    assert parse_answer(until_close, eof=False) is None
    assert parse_answer(until_close, eof=True) == (200, [(b"X-A", b"b")], b"{}", False)
    assert parse_answer(bytearray(b"HTTP/1.0 204 No\r\n\r\n"), eof=False) == (204, [], b"", False)
    closing = bytearray(b"HTTP/1.1 500 E\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
    assert parse_answer(closing, eof=False) == (
        500,
        [(b"Connection", b"close"), (b"Content-Length", b"2")],
        b"{}",
        False,
    )
    trailers = bytearray(chunked(OK)[:-2] + b"X-Trailer: 1\r\n")
    assert parse_answer(trailers, eof=False) is None
    assert parse_answer(trailers + b"\r\n", eof=False) == (200, [], OK, True)
    assert parse_answer(bytearray(fixed(200, OK)[:-1]), eof=False) is None


@pytest.mark.parametrize(
    ("data", "eof"),
    [
        (b"SSH-2.0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}", True),
    ],
    ids=["status-line", "header-line", "content-length", "chunk-size", "closed-mid-body"],
)
def test_bad_answers_are_protocol_errors(data: bytes, eof: bool) -> None:
    with pytest.raises(HttpProtocolError):
        parse_answer(bytearray(data), eof=eof)


def test_a_bad_gzip_body_is_a_protocol_error() -> None:
    answer = Answer(200, [(b"Content-Encoding", b"gzip")], b"not gzip", True)
    with pytest.raises(HttpProtocolError, match="bad gzip body"):
        decoded_body(answer)
    assert decoded_body(answer._replace(headers=[])) == b"not gzip"


async def test_connections_are_reused_per_origin_unless_closed() -> None:
    pool = new_pool()
    async with (
        RawHttpServer(lambda _: fixed(200, OK)) as server,
        RawHttpServer(lambda _: fixed(500, b"{}", "Connection: close")) as closing,
    ):
        for _ in range(3):
            assert (await send(pool, server)).status == 200
        for _ in range(2):
            assert (await send(pool, closing)).status == 500
        await pool.aclose()
    assert (server.connections, closing.connections) == (1, 2)


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async with RawHttpServer(lambda _: fixed(200, OK), keep_open=False) as server:
        pool = new_pool()
        first = await pool.connection(origin(server))
        assert (await pool.exchange(first, REQUEST)).keep_alive
        await wait_until(lambda: asyncio.sleep(0, first.closed), timeout=5, what="EOF seen")
        assert (await send(pool, server)).status == 200
        await pool.aclose()
    assert server.connections == 2


async def test_a_connection_idle_too_long_is_closed_not_reused() -> None:
    # A server's keep-alive timeout could close it just as the next request goes out.
    now = [100.0]
    pool = Http1Pool(ssl.create_default_context, max_idle_seconds=4.0, clock=lambda: now[0])
    async with RawHttpServer(lambda _: fixed(200, OK)) as server:
        first = await pool.connection(origin(server))
        await pool.exchange(first, REQUEST)
        now[0] += 3.9
        assert await pool.connection(origin(server)) is first  # still fresh
        await pool.exchange(first, REQUEST)
        now[0] += 4.0
        second = await pool.connection(origin(server))
        assert second is not first
        assert first.closed
        assert (await pool.exchange(second, REQUEST)).status == 200
        await pool.aclose()
    assert server.connections == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nConnection: close\r\n\r\n{",
            "middle of the body",
        ),
        (b"", "server closed without an answer"),
    ],
    ids=["mid-body", "no-answer"],
)
async def test_a_connection_lost_before_a_whole_answer(answer: bytes, error: str) -> None:
    async with RawHttpServer(lambda _: answer, keep_open=False) as server:
        with pytest.raises(HttpProtocolError, match=error):
            await send(new_pool(), server)


async def test_nobody_listening_is_refused() -> None:
    async with RawHttpServer(lambda _: b"") as gone:
        pass
    with pytest.raises(ConnectionRefusedError):
        await send(new_pool(), gone)


def test_a_configured_proxy_selects_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert choose_http_client("auto") == "lean"
    assert choose_http_client("httpx") == "httpx"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert choose_http_client("auto") == "httpx"
    assert choose_http_client("lean") == "lean"
