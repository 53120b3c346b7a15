"""The one pooled HTTP client of a sender process, speaking to the Graph API."""

from __future__ import annotations

import json
from typing import Any

from baton_sender.whatsapp.errors import NetworkError, WhatsAppError
from baton_sender.whatsapp.http import Http11Pool, HttpProtocolError


class WhatsAppClient:
    """Sends message bodies to `{graph_url}/{version}/{phone_number_id}/messages` over up to
    `max_connections` keep-alive connections (`http.Http11Pool`)."""

    def __init__(
        self,
        graph_url: str,
        api_version: str,
        access_token: str,
        *,
        timeout: float = 20.0,
        max_connections: int = 100,
    ) -> None:
        self.api_version = api_version
        self.pool = Http11Pool(
            graph_url,
            {"Authorization": f"Bearer {access_token}", "User-Agent": "baton-sender"},
            max_connections=max_connections,
            timeout=timeout,
        )

    async def send(self, phone_number_id: str, body: dict[str, Any]) -> str | None:
        """POST one message; returns its wamid (None for mark-as-read), or raises.

        Raises `WhatsAppError` for an error answer and `NetworkError` when no answer came.
        """
        path = f"/{self.api_version}/{phone_number_id}/messages"
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            status, content = await self.pool.post_json(path, payload)
        except (OSError, TimeoutError, HttpProtocolError) as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}") from exc
        try:
            data: Any = json.loads(content)
        except ValueError:
            data = None
        if status >= 400 or not isinstance(data, dict):
            raise WhatsAppError.from_response(status, data)
        messages = data.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            wamid = messages[0].get("id")
            return str(wamid) if wamid else None
        return None

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self.pool.aclose()
