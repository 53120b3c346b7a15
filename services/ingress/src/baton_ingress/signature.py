"""`X-Hub-Signature-256`: HMAC-SHA256 of the raw body, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header value WhatsApp sends for `body` signed with `secret`."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(body: bytes, header: str, secrets: Sequence[str]) -> bool:
    """True when `header` is the signature of the raw `body` under any of `secrets`.

    Every secret is compared (no early exit) so the time taken does not reveal which one
    matched; each comparison is itself constant-time.
    """
    given = header.strip().encode()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(body, secret).encode(), given)
    return matched
