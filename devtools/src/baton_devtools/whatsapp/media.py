"""In-memory media store: uploaded and customer-sent media, with short-lived signed URLs, and
the faults tests inject into media retrieval and downloads."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Literal, Self
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class MediaFault(BaseModel):
    """One injected media fault (`POST /_emulator/media/faults`), used by the next `count`
    matching calls.

    Attributes:
        stage: `retrieve` (`GET /{media_id}`) or `download` (the signed URL).
        media_id: only calls for this media id; any when None.
        count: how many matching calls it applies to.
        code: retrieve: answer this Graph error code (e.g. 131016, 4, 100).
        expire_url: retrieve: answer normally with a URL that has already expired, as one
            fetched more than five minutes ago (its download then gets 404).
        http_status: download: answer this status (e.g. 500, 503, 429) instead of the file.
    """

    model_config = ConfigDict(extra="forbid")

    stage: Literal["retrieve", "download"]
    media_id: str | None = None
    count: int = Field(default=1, ge=1)
    code: int | None = None
    expire_url: bool = False
    http_status: int | None = Field(default=None, ge=400, le=599)

    @model_validator(mode="after")
    def _needs_effect(self) -> Self:
        if self.stage == "retrieve" and (self.code is None) == (not self.expire_url):
            raise ValueError("a retrieve fault needs exactly one of `code` or `expire_url`")
        if self.stage == "download" and (self.http_status is None or self.code or self.expire_url):
            raise ValueError("a download fault needs `http_status` (and nothing else)")
        return self


class MediaStore:
    """Media by id; download URLs are signed and expire like lookaside URLs do.

    `downloads` counts successful downloads per media id (tests check nothing is fetched
    twice)."""

    def __init__(self) -> None:
        self._items: dict[str, MediaItem] = {}
        self._key = secrets.token_bytes(32)
        self.faults: list[tuple[MediaFault, int]] = []  # (fault, calls left)
        self.downloads: Counter[str] = Counter()

    def add_fault(self, fault: MediaFault) -> None:
        """Activate `fault`."""
        self.faults.append((fault, fault.count))

    def take_fault(self, stage: str, media_id: str) -> MediaFault | None:
        """Consume and return the first active fault matching this call, if any."""
        for index, (fault, remaining) in enumerate(self.faults):
            if fault.stage != stage or fault.media_id not in (None, media_id):
                continue
            if remaining <= 1:
                del self.faults[index]
            else:
                self.faults[index] = (fault, remaining - 1)
            return fault
        return None

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
