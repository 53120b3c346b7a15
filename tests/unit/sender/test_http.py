"""The sender's lean HTTP/1.1 client against a real socket server speaking raw HTTP."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from baton_sender.whatsapp.client import PROXY_VARIABLES, WhatsAppClient, choose_http_client
from baton_sender.whatsapp.errors import NetworkError, WhatsAppError
from baton_sender.whatsapp.http import Http11Pool, HttpProtocolError, _parse

Answer = Callable[[bytes], bytes]
OK = b'{"messages":[{"id":"wamid.1"}]}'


def fixed(status: int, body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Server:
    """Answers each request with `answer(request bytes)`, split into 1-byte-ish pieces when
    `trickle`; records requests and how many connections were opened."""

    def __init__(self, answer: Answer, *, trickle: bool = False) -> None:
        self.answer = answer
        self.trickle = trickle
        self.requests: list[bytes] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                data = self.answer(request)
                if self.trickle:
                    for i in range(0, len(data), 7):
                        writer.write(data[i : i + 7])
                        await writer.drain()
                        await asyncio.sleep(0)
                else:
                    writer.write(data)
                await writer.drain()
                if b"Connection: close" in data:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Serve = Callable[[Server], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(handler: Server) -> str:
        server = await asyncio.start_server(handler.handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("kind", ["lean", "httpx"])
async def test_keep_alive_request_shape_and_reuse(serve: Serve, kind: str) -> None:
    server = Server(lambda _: fixed(200, OK))
    client = WhatsAppClient(await serve(server), "v21.0", "tok", http_client=kind)  # type: ignore[arg-type]
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


@pytest.mark.parametrize(("trickle", "kind"), [(False, "lean"), (True, "lean"), (True, "httpx")])
async def test_chunked_gzip_and_error_answers(serve: Serve, trickle: bool, kind: str) -> None:
    error = b'{"error":{"code":131026,"message":"(#131026) Message undeliverable"}}'
    answers = iter(
        [
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (10, OK[:10])
            + b"%x;ext=1\r\n%s\r\n0\r\n\r\n" % (len(OK) - 10, OK[10:]),
            fixed(200, gzip.compress(OK), "Content-Encoding: gzip"),
            fixed(400, error),
        ]
    )
    server = Server(lambda _: next(answers), trickle=trickle)
    client = WhatsAppClient(await serve(server), "v21.0", "tok", http_client=kind)  # type: ignore[arg-type]
    assert await client.send("1", {}) == "wamid.1"
    assert await client.send("1", {}) == "wamid.1"
    with pytest.raises(WhatsAppError) as refused:
        await client.send("1", {})
    assert (refused.value.code, refused.value.http_status) == (131026, 400)
    await client.aclose()
    assert server.connections == 1


async def test_connection_close_and_server_gone(serve: Serve) -> None:
    server = Server(lambda _: fixed(200, OK, "Connection: close"))
    url = await serve(server)
    client = WhatsAppClient(url, "v21.0", "tok")
    assert await client.send("1", {}) == "wamid.1"
    assert await client.send("1", {}) == "wamid.1"
    assert server.connections == 2  # a closed connection is never reused
    await client.aclose()

    cut = Server(lambda _: b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 99\r\n\r\n{")
    cut_client = WhatsAppClient(await serve(cut), "v21.0", "tok")
    with pytest.raises(NetworkError, match="HttpProtocolError"):  # closed mid-body
        await cut_client.send("1", {})
    await cut_client.aclose()


async def test_no_answer_in_time_and_nobody_listening() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = WhatsAppClient(f"http://127.0.0.1:{port}", "v21.0", "tok", timeout=0.2)
    with pytest.raises(NetworkError, match="TimeoutError"):
        await client.send("1", {})
    await client.aclose()
    server.close()
    await server.wait_closed()
    gone = WhatsAppClient(f"http://127.0.0.1:{port}", "v21.0", "tok")
    with pytest.raises(NetworkError):
        await gone.send("1", {})


def test_parse_answers_without_length_and_bad_ones() -> None:
    assert _parse(bytearray(b"HTTP/1.1 200 OK\r\n\r\n{}"), eof=False) is None
    assert _parse(bytearray(b"HTTP/1.1 200 OK\r\n\r\n{}"), eof=True) == (200, b"{}", False)
    assert _parse(bytearray(b"HTTP/1.0 204 No\r\n\r\n"), eof=False) == (204, b"", False)
    with pytest.raises(HttpProtocolError):
        _parse(bytearray(b"SSH-2.0\r\n\r\n"), eof=False)
    with pytest.raises(HttpProtocolError):
        _parse(bytearray(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}"), eof=True)


def test_pool_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="http"):
        Http11Pool("ftp://x", {}, max_connections=1, timeout=1)


def test_a_configured_proxy_selects_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert choose_http_client("auto") == "lean"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert choose_http_client("auto") == "httpx"
    assert choose_http_client("lean") == "lean"


async def test_httpx_transport_reports_network_errors() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    gone = WhatsAppClient(f"http://127.0.0.1:{port}", "v21.0", "tok", http_client="httpx")
    with pytest.raises(NetworkError):
        await gone.send("1", {})
    await gone.aclose()
