"""What WhatsApp does with the media of a send after answering it: a media `id` must name
media in the store (uploaded or received, not deleted), and a `link` is downloaded. Either
failing fails the message with 131053 by status webhook (reference 7.2, 9: "Downloading
media from weblink failed with http code 503" arrives as a `failed` status after 200 +
wamid).

Links to `reachable_media_hosts` (and their subdomains) count as fetched without a request.
A fetched link must answer 2xx (redirects are followed) within `media_fetch_timeout_ms`,
declare a content type the message type accepts (none, or
`application/octet-stream`, is let through) and stay
within that type's size limit. Successful fetches are cached per URL for ten minutes, as
Meta caches link media (reference 5.1).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from baton_devtools.whatsapp.errors import GraphError
from baton_devtools.whatsapp.media import MAX_SIZES, MediaStore

MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
LINK_CACHE_SECONDS = 600
MAX_CACHED_LINKS = 10_000
MAX_REDIRECTS = 5
# MIME types each message type accepts (reference 6); documents take any file.
ACCEPTED_TYPES: dict[str, frozenset[str]] = {
    "image": frozenset({"image/jpeg", "image/png"}),
    "video": frozenset({"video/mp4", "video/3gpp"}),
    "audio": frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
    "sticker": frozenset({"image/webp"}),
}
DEFAULT_MAX_BYTES = 100 * 1024 * 1024


def media_refs(message_type: str, body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(media type, media object) for every media object of a send: the message's own, an
    interactive header's, and template header parameters'."""
    if message_type in MEDIA_KINDS:
        yield message_type, body[message_type]
    elif message_type == "interactive":
        header = body["interactive"].get("header") or {}
        kind = header.get("type")
        if kind in ("image", "video", "document"):
            yield kind, header[kind]
    elif message_type == "template":
        for component in body["template"].get("components") or []:
            for parameter in component.get("parameters") or []:
                kind = parameter.get("type")
                if kind in ("image", "video", "document"):
                    yield kind, parameter[kind]


def base_type(mime_type: str) -> str:
    """`audio/ogg; codecs=opus` -> `audio/ogg`."""
    return mime_type.split(";")[0].strip().lower()


def _media_error(details: str) -> GraphError:
    return GraphError(131053, details)


def check_media_ids(media: MediaStore, refs: list[tuple[str, dict[str, Any]]]) -> GraphError | None:
    """The 131053 a send's media ids earn: unknown (never uploaded, deleted, expired) or of
    a type its message type does not take; None when all are fine."""
    for kind, obj in refs:
        media_id = obj.get("id")
        if media_id is None:
            continue
        item = media.get(str(media_id))
        if item is None:
            return _media_error(
                f"Media ID {media_id} was not found: it was never uploaded, was deleted or "
                "has expired."
            )
        mismatch = _type_mismatch(kind, item.mime_type, obj)
        if mismatch is not None:
            return _media_error(mismatch)
    return None


def _type_mismatch(kind: str, mime_type: str, obj: dict[str, Any]) -> str | None:
    plain = base_type(mime_type)
    accepted = ACCEPTED_TYPES.get(kind)
    if accepted is not None and plain not in accepted:
        return f"Media type {plain} is not supported for {kind} messages."
    if kind == "audio" and obj.get("voice") and plain != "audio/ogg":
        return f"Voice messages must be audio/ogg (OPUS codec), not {plain}."
    return None


def is_reachable_host(link: str, hosts: list[str]) -> bool:
    """Whether `link` points at one of `hosts` or a subdomain of one."""
    host = (urlsplit(link).hostname or "").lower()
    return any(host == name or host.endswith("." + name) for name in hosts)


class LinkFetcher:
    """Downloads media links like WhatsApp's fetcher, with a per-URL success cache."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._fetched: dict[str, float] = {}  # url -> until when the success is cached
        self.fetches = 0  # requests made (tests check the cache and the allow-list)

    async def check(
        self, refs: list[tuple[str, dict[str, Any]]], hosts: list[str], timeout_ms: int
    ) -> GraphError | None:
        """The 131053 the first link that cannot be fetched earns; None when all can."""
        for kind, obj in refs:
            link = obj.get("link")
            if link is None or is_reachable_host(str(link), hosts):
                continue
            error = await self._fetch(kind, str(link), obj, timeout_ms / 1000)
            if error is not None:
                return error
        return None

    async def _fetch(
        self, kind: str, link: str, obj: dict[str, Any], seconds: float
    ) -> GraphError | None:
        now = time.monotonic()
        if self._fetched.get(link, 0.0) > now:
            return None
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=True, max_redirects=MAX_REDIRECTS)
        self.fetches += 1
        try:
            async with (
                asyncio.timeout(seconds),  # the whole download, not each read
                self._client.stream("GET", link, timeout=seconds) as response,
            ):
                error = await _judge(kind, response, obj)
        except TimeoutError:
            return _media_error(
                f"Downloading media from weblink failed: no file within {seconds:g} s."
            )
        except httpx.HTTPError as exc:
            return _media_error(
                f"Downloading media from weblink failed: {type(exc).__name__} {exc}".strip()
            )
        if error is None:
            if len(self._fetched) >= MAX_CACHED_LINKS:
                self._fetched = {url: until for url, until in self._fetched.items() if until > now}
            self._fetched[link] = now + LINK_CACHE_SECONDS
        return error

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def _judge(kind: str, response: httpx.Response, obj: dict[str, Any]) -> GraphError | None:
    if not 200 <= response.status_code < 300:
        return _media_error(
            f"Downloading media from weblink failed with http code {response.status_code}, "
            f"status message {response.reason_phrase}"
        )
    declared = base_type(response.headers.get("content-type") or "")
    plain = None if declared in ("", "application/octet-stream") else declared
    if plain is not None:
        mismatch = _type_mismatch(kind, plain, obj)
        if mismatch is not None:
            return _media_error(mismatch)
    limit = MAX_SIZES.get(plain or "", DEFAULT_MAX_BYTES)
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return _media_error(f"Media file size exceeds the limit of {limit} bytes.")
    if size == 0:
        return _media_error("Downloading media from weblink failed: the file is empty.")
    return None
