"""A lean keep-alive HTTP/1.1 client core: the send paths' only HTTP cost.

Why it exists (measured): at 1,000 messages/s the sender's CPU went mostly to httpx and
httpcore (request and response models, anyio cancel scopes, a readability poll of every pooled
socket per request), about 0.6 ms per Graph call; this client costs a tenth of it. Under
google-genai, httpx2's httpcore2 pool, h11 and anyio (cancel scopes, the same poll, headers
and body written separately) took about a fifth of a model call's CPU, about 0.4 ms. Both calls
are one small request and one small answer, so the request is written to an asyncio transport
in one piece and the answer parsed in place: framed by Content-Length, chunked encoding or the
connection's close, interim 1xx answers skipped, gzip/deflate decoded on demand
(`decoded_body`). A connection closed by the server while idle is noticed by the event loop
(`connection_lost`) and never reused; nor is one idle for `max_idle_seconds` (4 s, under the
usual server keep-alive timeouts, uvicorn's 5 s the shortest): a server closing it just as a
request goes out would fail that request ("server closed without an answer").

Adapters (`baton_sender.whatsapp.http`, `baton_agent.http`) build the request bytes, pass the
TLS context (httpx's certifi one) and map errors: this module raises `OSError` (connecting,
or the connection lost mid-answer), `HttpProtocolError`, and `TimeoutError` from the caller's
own timeouts. Proxies are not supported: `choose_http_client("auto")` picks httpx when a proxy
variable is set.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
import zlib
from collections import deque
from collections.abc import Callable
from typing import Literal, NamedTuple, cast

HttpClientKind = Literal["auto", "lean", "httpx"]
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")

Origin = tuple[str, str, int]
"""(scheme, host, port)."""


def choose_http_client(kind: HttpClientKind) -> Literal["lean", "httpx"]:
    """`auto`: httpx when a proxy is configured in the environment, else the lean client."""
    if kind != "auto":
        return kind
    return "httpx" if any(os.environ.get(name) for name in PROXY_VARIABLES) else "lean"


class HttpProtocolError(Exception):
    """The server's answer was not valid HTTP/1.1, or the connection closed mid-answer."""


class Answer(NamedTuple):
    """One whole answer: headers as sent (less `Transfer-Encoding`: the body is unframed),
    the body still content-encoded, and whether the connection may carry another request."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool


class Connection(asyncio.Protocol):
    """One connection to `origin`; at most one request at a time."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not `asyncio.Transport` subclasses: no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._settle(eof=False)

    def eof_received(self) -> bool | None:
        self.closed = True
        self._settle(eof=True)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._settle(eof=True, lost=exc)

    def _settle(self, *, eof: bool, lost: Exception | None = None) -> None:
        """Hand the waiting request its answer once whole, or its error."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            answer = parse_answer(self._buffer, eof=eof)
        except HttpProtocolError as exc:
            waiter.set_exception(exc)
            return
        if answer is not None:
            waiter.set_result(answer)
        elif eof:
            waiter.set_exception(lost or HttpProtocolError("server closed without an answer"))

    async def request(self, data: bytes) -> Answer:
        """Write one whole request in one piece and wait for the whole answer."""
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


def parse_answer(buffer: bytearray, *, eof: bool) -> Answer | None:
    """The answer once `buffer` holds a whole one (`eof`: the server has closed), else None."""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(buffer[:end]).split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
            raise HttpProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(rest[:3])
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            del buffer[: end + 4]
            continue
        break
    headers: list[tuple[bytes, bytes]] = []
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise HttpProtocolError(f"bad header line {line[:80]!r}")
        name, value = name.strip(), value.strip()
        headers.append((name, value))
        fields[name.lower()] = value
    keep_alive = fields.get(b"connection", b"").lower() != b"close" and version == b"HTTP/1.1"
    start = end + 4
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        body = _chunked(buffer, start)
        if body is None:
            return None
        headers = [(n, v) for n, v in headers if n.lower() != b"transfer-encoding"]
    elif b"content-length" in fields:
        try:
            length = int(fields[b"content-length"])
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
    return Answer(status, headers, body, keep_alive)


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


def decoded_body(answer: Answer) -> bytes:
    """The body with its gzip or deflate `Content-Encoding` undone (for a server that ignored
    `Accept-Encoding: identity`)."""
    encoding = next((v for n, v in answer.headers if n.lower() == b"content-encoding"), b"")
    if encoding.lower() not in (b"gzip", b"deflate"):
        return answer.body
    try:
        return zlib.decompress(answer.body, 47)  # 32 + 15: gzip or zlib header, detected
    except zlib.error as exc:
        raise HttpProtocolError(f"bad {encoding.decode('latin-1')} body") from exc


class Http1Pool:
    """Idle keep-alive connections per origin, for the event loop that opened them.

    `connection` hands out the idle connection used last (or opens one), `exchange` sends one
    request on it and puts it back if the answer allows keep-alive; any other is closed, and
    so is one found idle for `max_idle_seconds` or longer. No limit on connections: callers
    bound their own concurrency.
    """

    def __init__(
        self,
        ssl_context: Callable[[], ssl.SSLContext],
        *,
        max_idle_seconds: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssl_context = ssl_context
        self.max_idle_seconds = max_idle_seconds
        self._clock = clock
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[Origin, deque[Connection]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def connection(self, origin: Origin) -> Connection:
        """An idle connection to `origin`, or a new one (raises `OSError` if none opens)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that opened them
            self._drop_idle()
            self._loop = loop
        idle = self._idle.get(origin)
        if idle:
            stale = self._clock() - self.max_idle_seconds
            while idle:
                connection = idle.pop()
                if connection.idle_since > stale and not connection.closed:
                    return connection
                connection.close()
        scheme, host, port = origin
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = self._ssl_context()
            context = self._ssl
        _, connection = await loop.create_connection(
            lambda: Connection(origin),
            host,
            port,
            ssl=context,
            server_hostname=host if context else None,
        )
        return connection

    async def exchange(self, connection: Connection, data: bytes) -> Answer:
        """Send `data` (a whole request) on `connection`; returns the whole answer."""
        try:
            answer = await connection.request(data)
        except BaseException:
            connection.close()
            raise
        if answer.keep_alive and not connection.closed:
            connection.idle_since = self._clock()
            self._idle.setdefault(connection.origin, deque()).append(connection)
        else:
            connection.close()
        return answer

    def _drop_idle(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()

    async def aclose(self) -> None:
        """Close every idle connection."""
        self._drop_idle()
