"""Bearer tokens: high-entropy random strings, stored only as their SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum

TOKEN_PREFIX = "bat_"  # noqa: S105 (a prefix, not a secret)


class Role(StrEnum):
    """What an operator may do: admins also force takeovers and manage operators."""

    ADMIN = "admin"
    OPERATOR = "operator"


def new_token() -> str:
    """A fresh bearer token (256 bits of randomness)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: a slow hash is unnecessary for 256-bit random secrets."""
    return hashlib.sha256(token.encode()).hexdigest()
