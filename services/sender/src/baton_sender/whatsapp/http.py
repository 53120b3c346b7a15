"""A lean keep-alive HTTP/1.1 client for one origin: the send path's only HTTP cost.

At 1,000 messages/s the sender's CPU went mostly to httpx and httpcore (request and response
models, anyio cancel scopes, a readability poll of every pooled socket per request): about
0.6 ms per call. A Graph call is one small JSON POST and one small JSON answer, so this client
writes the request bytes straight to an asyncio transport and parses the answer itself
(Content-Length or chunked, gzip if a server ignores `Accept-Encoding: identity`). TLS comes
from httpx's default context (certifi), so `https://graph.facebook.com` is verified as before.
A connection closed by the server while idle is noticed by the event loop (`connection_lost`)
and never reused; proxies (`HTTPS_PROXY`) are not supported.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from typing import cast
from urllib.parse import urlsplit

import httpx


class HttpProtocolError(Exception):
    """The server's answer was not valid HTTP/1.1, or the connection closed mid-answer."""


class _Connection(asyncio.Protocol):
    """One connection; at most one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not `asyncio.Transport` subclasses: no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            answer = _parse(self._buffer, eof=False)
        except HttpProtocolError as exc:
            waiter.set_exception(exc)
            return
        if answer is not None:
            waiter.set_result(answer)

    def eof_received(self) -> bool | None:
        self._finish_at_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish_at_eof(exc)

    def _finish_at_eof(self, exc: Exception | None = None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            answer = _parse(self._buffer, eof=True)
        except HttpProtocolError as error:
            waiter.set_exception(error)
            return
        if answer is None:
            waiter.set_exception(exc or HttpProtocolError("server closed without an answer"))
        else:
            waiter.set_result(answer)

    async def request(self, data: bytes) -> tuple[int, bytes, bool]:
        """Write one request; returns (status, body, keep-alive)."""
        assert self.transport is not None
        self._buffer.clear()
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        """Close the socket."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _parse(buffer: bytearray, *, eof: bool) -> tuple[int, bytes, bool] | None:
    """(status, body, keep-alive) once `buffer` holds a whole answer, else None."""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise HttpProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(rest[:3])
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            del buffer[: end + 4]
            continue
        break
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpProtocolError(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
    start = end + 4
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _chunked(buffer, start)
        if body is None:
            return None
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError as exc:
            raise HttpProtocolError("bad Content-Length") from exc
        if len(buffer) - start < length:
            if eof:
                raise HttpProtocolError("connection closed in the middle of the body")
            return None
        body = bytes(buffer[start : start + length])
    elif status in (204, 304):
        body = b""
    else:  # no length: the body runs until the server closes the connection
        if not eof:
            return None
        body, keep_alive = bytes(buffer[start:]), False
    encoding = headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate"):
        try:
            body = zlib.decompress(body, 47)  # 32 + 15: gzip or zlib header, detected
        except zlib.error as exc:
            raise HttpProtocolError(f"bad {encoding} body") from exc
    return status, body, keep_alive


def _chunked(buffer: bytearray, start: int) -> bytes | None:
    """The body of a chunked answer starting at `start`, or None while incomplete."""
    parts: list[bytes] = []
    at = start
    while True:
        eol = buffer.find(b"\r\n", at)
        if eol < 0:
            return None
        size_text = bytes(buffer[at:eol]).split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise HttpProtocolError("bad chunk size") from exc
        if size == 0:
            # Trailers (rare) end with an empty line, like the headers.
            if buffer.find(b"\r\n\r\n", eol) < 0:
                return None
            return b"".join(parts)
        if len(buffer) < eol + 2 + size + 2:
            return None
        parts.append(bytes(buffer[eol + 2 : eol + 2 + size]))
        at = eol + 2 + size + 2


class Http11Pool:
    """Keep-alive connections to the origin of `base_url`, at most `max_connections`.

    `post_json` sends one request per connection at a time; a connection that answered with
    keep-alive goes back to the idle list (last used first), any other is closed."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        max_connections: int,
        timeout: float,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.prefix = url.path.rstrip("/")
        self.ssl: ssl.SSLContext | None = (
            httpx.create_ssl_context() if url.scheme == "https" else None
        )
        self.timeout = timeout
        default_port = self.port == (443 if url.scheme == "https" else 80)
        host_header = self.host if default_port else f"{self.host}:{self.port}"
        fixed = {"Host": host_header, "Accept-Encoding": "identity", **headers}
        self._head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(max_connections)

    async def post_json(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST `body` (JSON) to `path`; returns (status, body). Raises `OSError`,
        `TimeoutError` or `HttpProtocolError` when no whole answer came."""
        request = (
            f"POST {self.prefix}{path} HTTP/1.1\r\n{self._head}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        async with self._slots, asyncio.timeout(self.timeout):
            connection = await self._connection()
            try:
                status, answer, keep_alive = await connection.request(request)
            except BaseException:
                connection.close()
                raise
            if keep_alive and not connection.closed:
                self._idle.append(connection)
            else:
                connection.close()
            return status, answer

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            _Connection,
            self.host,
            self.port,
            ssl=self.ssl,
            server_hostname=self.host if self.ssl else None,
        )
        return connection

    async def aclose(self) -> None:
        """Close every idle connection."""
        while self._idle:
            self._idle.pop().close()
