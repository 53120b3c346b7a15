"""In-memory media store: uploaded and customer-sent media, with short-lived signed URLs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from baton_devtools.whatsapp.errors import GraphError

MB = 1024 * 1024
URL_TTL_SECONDS = 300
_DOCUMENT = 100 * MB
# Supported upload MIME types and their size limits, per Meta's media page.
MAX_SIZES: dict[str, int] = {
    "audio/aac": 16 * MB,
    "audio/amr": 16 * MB,
    "audio/mpeg": 16 * MB,
    "audio/mp4": 16 * MB,
    "audio/ogg": 16 * MB,
    "image/jpeg": 5 * MB,
    "image/png": 5 * MB,
    "image/webp": 500 * 1024,
    "video/3gpp": 16 * MB,
    "video/mp4": 16 * MB,
    "text/plain": _DOCUMENT,
    "application/pdf": _DOCUMENT,
    "application/vnd.ms-excel": _DOCUMENT,
    "application/msword": _DOCUMENT,
    "application/vnd.ms-powerpoint": _DOCUMENT,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _DOCUMENT,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _DOCUMENT,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _DOCUMENT,
}


@dataclass(frozen=True)
class MediaItem:
    """One stored media object."""

    id: str
    data: bytes
    mime_type: str
    phone_number_id: str

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes, as `GET /{media_id}` reports it."""
        return hashlib.sha256(self.data).hexdigest()


def check_upload(mime_type: str, size: int) -> None:
    """Raise 131053 (media upload error) for unsupported types, empty or oversized files."""
    base_type = mime_type.split(";")[0].strip().lower()
    if base_type not in MAX_SIZES:
        raise GraphError(131053, f"Param file must be a file with one of the supported types: "
                         f"{mime_type} is not supported.")  # fmt: skip
    if size == 0:
        raise GraphError(131053, "Uploaded file is empty.")
    if size > MAX_SIZES[base_type]:
        raise GraphError(131053, f"File size {size} exceeds the limit for {base_type}.")


class MediaStore:
    """Media by id; download URLs are signed and expire like lookaside URLs do."""

    def __init__(self) -> None:
        self._items: dict[str, MediaItem] = {}
        self._key = secrets.token_bytes(32)

    def add(self, data: bytes, mime_type: str, phone_number_id: str) -> MediaItem:
        """Store bytes and return the new item with a fresh numeric id."""
        media_id = str(10**15 + secrets.randbelow(9 * 10**15))
        item = MediaItem(media_id, data, mime_type, phone_number_id)
        self._items[media_id] = item
        return item

    def get(self, media_id: str) -> MediaItem | None:
        """Return the item, or None."""
        return self._items.get(media_id)

    def delete(self, media_id: str) -> bool:
        """Delete the item; False if it did not exist."""
        return self._items.pop(media_id, None) is not None

    def signed_query(self, media_id: str, now: float | None = None) -> str:
        """Query string of a download URL valid for five minutes."""
        expires = int(now if now is not None else time.time()) + URL_TTL_SECONDS
        return urlencode({"mid": media_id, "ext": expires, "hash": self._sign(media_id, expires)})

    def resolve_download(self, mid: str, ext: int, signature: str) -> MediaItem | None:
        """The item a download URL points to, or None if it is forged, expired or deleted."""
        valid = hmac.compare_digest(signature, self._sign(mid, ext))
        if not valid or ext < time.time():
            return None
        return self._items.get(mid)

    def _sign(self, media_id: str, expires: int) -> str:
        message = f"{media_id}:{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]
