"""A socket server speaking raw HTTP/1.1, for testing HTTP clients byte by byte."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType


def fixed(status: int, body: bytes, *headers: str) -> bytes:
    """A JSON answer framed by Content-Length, with extra `headers` ("Name: value")."""
    head = "".join(f"{h}\r\n" for h in headers)
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def chunked(body: bytes) -> bytes:
    """A 200 answer carrying `body` in two chunks (with chunk extensions)."""
    middle = len(body) // 2
    chunks = b"".join(
        f"{len(p):x};ext=1\r\n".encode() + p + b"\r\n" for p in (body[:middle], body[middle:])
    )
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"


class RawHttpServer:
    """Answers each request (it must have a Content-Length) with `answer(request)`.

    Written 7 bytes at a time when `trickle`, after `delay` seconds; the connection is closed
    after an answer saying `Connection: close`, or after every answer unless `keep_open`.
    Records the requests and how many connections were opened. Use as `async with`."""

    def __init__(
        self,
        answer: Callable[[bytes], bytes],
        *,
        trickle: bool = False,
        delay: float = 0,
        keep_open: bool = True,
    ) -> None:
        self.answer, self.trickle, self.delay, self.keep_open = answer, trickle, delay, keep_open
        self.requests: list[bytes] = []
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawHttpServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                await asyncio.sleep(self.delay)
                data = self.answer(self.requests[-1])
                step = 7 if self.trickle else len(data)
                for i in range(0, len(data), step):
                    writer.write(data[i : i + step])
                    await writer.drain()
                    if self.trickle:  # let the client read each piece on its own
                        await asyncio.sleep(0)
                if b"Connection: close" in data or not self.keep_open:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
