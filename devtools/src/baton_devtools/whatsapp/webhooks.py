"""Serialize, sign and post webhooks to ingress the way Meta does."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx

logger = logging.getLogger(__name__)


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Serialize like Meta: compact, non-ASCII as lowercase `\\uXXXX`, and `/` escaped as `\\/`.

    The escapes make sure a receiver that re-serializes the parsed JSON before checking the
    signature fails here as it would against the real platform.
    """
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/").encode("ascii")


def sign(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookClient:
    """Posts signed webhook bodies to one URL over a pooled, lazily created httpx client."""

    def __init__(self, url: str, app_secret: str, timeout: float = 10.0) -> None:
        self.url = url
        self._secret = app_secret
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def post(self, payload: Mapping[str, Any], *, signed: bool = True) -> int:
        """Serialize `payload` once, sign those bytes, post them; return the HTTP status."""
        body = encode_payload(payload)
        headers = {"Content-Type": "application/json"}
        if signed:
            headers["X-Hub-Signature-256"] = sign(body, self._secret)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        response = await self._client.post(self.url, content=body, headers=headers)
        return response.status_code

    async def post_logged(self, payload: Mapping[str, Any]) -> int | None:
        """Like `post`, but log a failure and return None instead of raising."""
        try:
            return await self.post(payload)
        except httpx.HTTPError as exc:
            logger.warning("webhook post to %s failed: %r", self.url, exc)
            return None

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
