"""Serving an ASGI app on a free port, for tests and benchmarks: in a background thread
(`ServerThread`) or in the running event loop (`serving`)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import uvicorn

from baton_shared.testing import wait_until


@asynccontextmanager
async def serving(
    app: Any, *, lifespan: Literal["on", "off"] = "on", start_timeout: float = 10.0
) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port in this event loop; yields its URL
    once it listens, and stops the server after the block."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan=lifespan)
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()  # raises why the server could not start
            raise RuntimeError("the server stopped before it listened")
        return bool(server.started)

    await wait_until(started, timeout=start_timeout, what="server listening")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class ServerThread:
    """An ASGI app served by uvicorn on a free 127.0.0.1 port in a background thread.

    Use as a context manager: the server is up (`url` answers) inside the block and stopped
    after it.
    """

    def __init__(self, app: Any, *, start_timeout: float = 10.0) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.start_timeout = start_timeout
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server at {self.url} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
