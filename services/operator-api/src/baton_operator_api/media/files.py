"""Checks and names for a downloaded file: checksum, size, filename."""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import re

from baton_operator_api.media.errors import PermanentMediaError

# Extensions for WhatsApp's media types where `mimetypes` guesses oddly or not at all.
EXTENSIONS = {
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "video/3gpp": ".3gp",
    "text/plain": ".txt",
}
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/]')


def base_type(mime_type: str) -> str:
    """`audio/ogg` for `audio/ogg; codecs=opus`."""
    return mime_type.split(";", 1)[0].strip().lower()


def same_digest(digest: bytes, claimed: str) -> bool:
    """Whether `claimed` (hex as `GET /{media_id}` reports it, or base64 as webhooks do) is
    the SHA-256 `digest`."""
    text = claimed.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text) == digest
    try:
        return base64.b64decode(text, validate=True) == digest
    except (binascii.Error, ValueError):
        return False


def verify(data: bytes, *, sha256: str | None, file_size: int | None) -> str:
    """The hex SHA-256 of `data`, after checking it against what WhatsApp announced."""
    if file_size is not None and file_size != len(data):
        raise PermanentMediaError(f"size mismatch: got {len(data)} bytes, expected {file_size}")
    digest = hashlib.sha256(data).digest()
    if sha256 and not same_digest(digest, sha256):
        raise PermanentMediaError("sha256 mismatch: the downloaded file is not the one announced")
    return digest.hex()


def filename_for(media_id: str, kind: str, mime_type: str, given: str | None) -> str:
    """The customer's filename (documents), else `<kind>-<media_id><ext>`; safe for a header."""
    cleaned = _UNSAFE.sub("_", given).strip()[:200] if given else ""
    if cleaned:
        return cleaned
    base = base_type(mime_type)
    extension = EXTENSIONS.get(base) or mimetypes.guess_extension(base) or ".bin"
    return f"{kind}-{media_id}{extension}"
