"""The sender's lean Graph API client: `baton_shared.http1` (why it exists: its docstring)
for the one origin of `WA_GRAPH_URL`, TLS verified with httpx's certifi context."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx

from baton_sender.whatsapp.errors import NotSentError
from baton_shared.http1 import Http1Pool, decoded_body


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
        default_port = 443 if url.scheme == "https" else 80
        port = url.port or default_port
        self.origin = (url.scheme, url.hostname, port)
        self.prefix = url.path.rstrip("/")
        self.timeout = timeout
        host_header = url.hostname if port == default_port else f"{url.hostname}:{port}"
        fixed = {"Host": host_header, "Accept-Encoding": "identity", **headers}
        self._head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._pool = Http1Pool(httpx.create_ssl_context)
        self._slots = asyncio.Semaphore(max_connections)

    async def post_json(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST `body` (JSON) to `path`; returns (status, body). Raises `OSError`,
        `TimeoutError` or `HttpProtocolError` when no whole answer came."""
        request = (
            f"POST {self.prefix}{path} HTTP/1.1\r\n{self._head}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        connected = False
        try:
            async with self._slots, asyncio.timeout(self.timeout):
                connection = await self._pool.connection(self.origin)
                connected = True  # from here the request may reach WhatsApp
                answer = await self._pool.exchange(connection, request)
        except (OSError, TimeoutError) as exc:
            if not connected:
                raise NotSentError(f"{type(exc).__name__}: {exc}") from exc
            raise
        return answer.status, decoded_body(answer)

    async def aclose(self) -> None:
        """Close every idle connection."""
        await self._pool.aclose()
