"""The one pooled HTTP client of a sender process, speaking to the Graph API."""

from __future__ import annotations

import itertools
import math
from typing import Any

import httpx

from baton_sender.whatsapp.errors import NetworkError, WhatsAppError

# Connections per pool. httpcore looks at every connection of a pool on each request (and
# polls each idle one's socket), so one pool of hundreds of connections costs more CPU per
# request than the request itself; several small pools, used in turn, keep that cost flat.
CONNECTIONS_PER_POOL = 8


class WhatsAppClient:
    """Sends message bodies to `{graph_url}/{version}/{phone_number_id}/messages`.

    `max_connections` are spread over pools of `CONNECTIONS_PER_POOL`, used round-robin."""

    def __init__(
        self,
        graph_url: str,
        api_version: str,
        access_token: str,
        *,
        timeout: float = 20.0,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_version = api_version
        pools = max(1, math.ceil(max_connections / CONNECTIONS_PER_POOL))
        per_pool = math.ceil(max_connections / pools)
        self.pools = [
            httpx.AsyncClient(
                base_url=graph_url.rstrip("/"),
                headers={"Authorization": f"Bearer {access_token}"},
                timeout=timeout,
                limits=httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool),
                transport=transport,
            )
            for _ in range(pools)
        ]
        self._turn = itertools.cycle(self.pools)

    async def send(self, phone_number_id: str, body: dict[str, Any]) -> str | None:
        """POST one message; returns its wamid (None for mark-as-read), or raises.

        Raises `WhatsAppError` for an error answer and `NetworkError` when no answer came.
        """
        path = f"/{self.api_version}/{phone_number_id}/messages"
        try:
            response = await next(self._turn).post(path, json=body)
        except httpx.TransportError as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}") from exc
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400 or not isinstance(data, dict):
            raise WhatsAppError.from_response(response.status_code, data)
        messages = data.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            wamid = messages[0].get("id")
            return str(wamid) if wamid else None
        return None

    async def aclose(self) -> None:
        """Close the pooled connections."""
        for pool in self.pools:
            await pool.aclose()
