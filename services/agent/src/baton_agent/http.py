"""The Gemini client's lean transport (`GEMINI_HTTP_CLIENT=lean`): `baton_shared.http1` (why
it exists: its docstring) as an `httpx2.AsyncBaseTransport`, the transport API httpx2 and
google-genai document (`client_args={"transport": ...}`). The SDK still builds the request
(URL, headers, JSON, timeout) and reads the `httpx2.Response` (status, headers, body, gzip via
`Content-Encoding`) as before; only the bytes on the socket are ours. Connections are opened
as calls need them: the agent has at most `AGENT_CONCURRENCY` model calls in flight.
"""

from __future__ import annotations

import asyncio

import httpx2

from baton_shared.http1 import Http1Pool, HttpProtocolError


class LeanTransport(httpx2.AsyncBaseTransport):
    """Keep-alive connections per origin and event loop; one request per connection at once.

    Errors are httpx2's: `ConnectError`, `ConnectTimeout`, `ReadTimeout`,
    `RemoteProtocolError`, so the SDK and the agent's retries see what they saw before.
    """

    def __init__(self) -> None:
        self._pool = Http1Pool(httpx2.create_ssl_context)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send `request` on an idle connection (or a new one) and read the whole answer."""
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        origin = (url.scheme, url.host, port)
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), url.raw_path)]
        head += [b"%s: %s\r\n" % (name, value) for name, value in request.headers.raw]
        data = b"".join(head) + b"\r\n" + body
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                connection = await self._pool.connection(origin)
        except TimeoutError as exc:
            raise httpx2.ConnectTimeout(
                f"connecting to {url.host}:{port}", request=request
            ) from exc
        except OSError as exc:
            raise httpx2.ConnectError(
                f"connecting to {url.host}:{port}: {exc}", request=request
            ) from exc
        try:
            async with asyncio.timeout(timeouts.get("read")):
                answer = await self._pool.exchange(connection, data)
        except TimeoutError as exc:
            raise httpx2.ReadTimeout("no answer within the read timeout", request=request) from exc
        except HttpProtocolError as exc:
            raise httpx2.RemoteProtocolError(str(exc), request=request) from exc
        except OSError as exc:  # the connection was lost before a whole answer came
            raise httpx2.RemoteProtocolError(
                f"server closed without an answer ({exc})", request=request
            ) from exc
        return httpx2.Response(
            answer.status,
            headers=answer.headers,
            content=answer.body,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        """Close every idle connection."""
        await self._pool.aclose()
