"""How a download went wrong: worth retrying later, or never."""

from __future__ import annotations

from typing import Any

# Graph codes WhatsApp marks as worth retrying (reference section 7.2), as in the sender;
# 0 / 190 (token) too: nothing about the media is wrong, and a fixed token heals it.
TRANSIENT_CODES = frozenset({0, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057, 133004, 190})
UNKNOWN_OBJECT_CODE = 100  # "Unsupported get request. Object with ID ... does not exist"


class MediaError(Exception):
    """A download failed; `str(exc)` is the reason operators see (never a token or URL)."""


class TransientMediaError(MediaError):
    """A later try may succeed: network, 5xx, 429, Graph's transient codes, token errors."""


class PermanentMediaError(MediaError):
    """No try will succeed: unknown or expired media id, too large, checksum mismatch."""


class UrlRefusedError(Exception):
    """The download URL was refused (expired, 404): fetch a fresh one via `GET /{media_id}`."""


def graph_error(http_status: int, body: Any, media_id: str) -> MediaError:
    """Classify an error answer of `GET /{media_id}`."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    what = f"HTTP {http_status}" + (f", code {code}" if code is not None else "")
    if message:
        what += f": {str(message)[:200]}"
    if code in TRANSIENT_CODES or http_status == 429 or (http_status >= 500 and code in (None, 1)):
        return TransientMediaError(f"media lookup failed ({what})")
    if code == UNKNOWN_OBJECT_CODE or http_status == 404:
        return PermanentMediaError(f"unknown or expired media id {media_id} ({what})")
    return PermanentMediaError(f"media lookup refused ({what})")
