"""The Graph API's media endpoints: `GET /{media_id}` for a fresh URL, then the download."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from baton_operator_api.media.errors import (
    PermanentMediaError,
    TransientMediaError,
    UrlRefusedError,
    graph_error,
)

# A download URL answering these has expired or was revoked: WhatsApp's advice is to fetch
# a new one via `GET /{media_id}` (reference section 6).
URL_REFUSED = frozenset({403, 404, 410})


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What `GET /{media_id}` says about a media object.

    Attributes:
        url: download URL, valid for five minutes, needs the bearer token.
        mime_type: the file's type.
        sha256: the file's checksum (hex, or base64 as in webhooks).
        file_size: bytes, when reported.
    """

    url: str
    mime_type: str | None
    sha256: str | None
    file_size: int | None


class GraphMedia:
    """One pooled HTTP client per process for media lookups and downloads (bearer token on
    both; the token never appears in a message of the errors raised)."""

    def __init__(
        self,
        graph_url: str,
        api_version: str,
        access_token: str,
        *,
        timeout: float = 20.0,
        max_connections: int = 8,
    ) -> None:
        self.api_version = api_version
        self.client = httpx.AsyncClient(
            base_url=graph_url.rstrip("/"),
            headers={"Authorization": f"Bearer {access_token}", "User-Agent": "baton-operator-api"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections),
            follow_redirects=True,
        )

    async def lookup(self, media_id: str) -> MediaInfo:
        """`GET /{version}/{media_id}`: a fresh download URL and the file's type, size, checksum."""
        try:
            response = await self.client.get(f"/{self.api_version}/{media_id}")
        except httpx.HTTPError as exc:
            raise TransientMediaError(f"media lookup: no answer ({type(exc).__name__})") from exc
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict):
            raise graph_error(response.status_code, body, media_id)
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise TransientMediaError("media lookup answered without a download URL")
        size = body.get("file_size")
        return MediaInfo(
            url=url,
            mime_type=_str(body.get("mime_type")),
            sha256=_str(body.get("sha256")),
            file_size=int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
        )

    async def download(self, url: str, max_bytes: int) -> bytes:
        """The file behind a download URL, refusing more than `max_bytes`.

        Raises `UrlRefusedError` for an expired URL, `PermanentMediaError` when too large,
        `TransientMediaError` for network errors, 401, 429 and 5xx."""
        try:
            async with self.client.stream("GET", url) as response:
                status = response.status_code
                if status in URL_REFUSED:
                    raise UrlRefusedError(f"HTTP {status}")
                if status >= 400 and status not in (401, 408, 429) and status < 500:
                    raise PermanentMediaError(f"download refused (HTTP {status})")
                if status >= 400:
                    raise TransientMediaError(f"download failed (HTTP {status})")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise too_large(int(declared), max_bytes)
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise too_large(None, max_bytes)
                return bytes(data)
        except httpx.HTTPError as exc:
            raise TransientMediaError(f"download: no answer ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self.client.aclose()


def too_large(size: int | None, max_bytes: int) -> PermanentMediaError:
    """The error for a file over `OPERATOR_API_MEDIA_MAX_BYTES`."""
    what = f"{size} bytes" if size is not None else "more bytes"
    return PermanentMediaError(
        f"file too large: {what} > OPERATOR_API_MEDIA_MAX_BYTES ({max_bytes})"
    )


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None
