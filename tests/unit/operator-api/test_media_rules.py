"""Media download rules: checksums, sizes, filenames, error classes, backoff."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest

from baton_operator_api.media.errors import PermanentMediaError, TransientMediaError, graph_error
from baton_operator_api.media.files import filename_for, same_digest, verify
from baton_operator_api.media.worker import retry_delay

DATA = b"OggS voice note"
DIGEST = hashlib.sha256(DATA).digest()


def test_checksum_in_hex_or_base64() -> None:
    assert same_digest(DIGEST, DIGEST.hex())
    assert same_digest(DIGEST, DIGEST.hex().upper())
    assert same_digest(DIGEST, base64.b64encode(DIGEST).decode())
    assert not same_digest(DIGEST, hashlib.sha256(b"other").hexdigest())
    assert not same_digest(DIGEST, "not a checksum!")


def test_verify_returns_hex_and_refuses_mismatches() -> None:
    assert verify(DATA, sha256=DIGEST.hex(), file_size=len(DATA)) == DIGEST.hex()
    assert verify(DATA, sha256=None, file_size=None) == DIGEST.hex()
    with pytest.raises(PermanentMediaError, match="sha256 mismatch"):
        verify(DATA, sha256=hashlib.sha256(b"x").hexdigest(), file_size=None)
    with pytest.raises(PermanentMediaError, match="size mismatch"):
        verify(DATA, sha256=None, file_size=len(DATA) + 1)


@pytest.mark.parametrize(
    ("kind", "mime", "given", "expected"),
    [
        ("document", "application/pdf", "invoice.pdf", "invoice.pdf"),
        ("document", "application/pdf", 'a"b\\c/d\r\n.pdf', "a_b_c_d__.pdf"),
        ("audio", "audio/ogg; codecs=opus", None, "audio-42.ogg"),
        ("image", "image/jpeg", None, "image-42.jpg"),
        ("sticker", "image/webp", None, "sticker-42.webp"),
        ("video", "video/unheard-of", None, "video-42.bin"),
    ],
)
def test_filenames(kind: str, mime: str, given: str | None, expected: str) -> None:
    assert filename_for("42", kind, mime, given) == expected


@pytest.mark.parametrize(
    ("status", "body", "transient"),
    [
        (500, None, True),
        (503, {"error": {"code": 1}}, True),
        (429, {"error": {"code": 4}}, True),
        (400, {"error": {"code": 131016}}, True),
        (401, {"error": {"code": 190, "message": "Invalid OAuth access token"}}, True),
        (400, {"error": {"code": 100, "message": "Object with ID '1' does not exist"}}, False),
        (404, None, False),
        (403, {"error": {"code": 10}}, False),
    ],
)
def test_graph_errors(status: int, body: object, transient: bool) -> None:
    error = graph_error(status, body, "1")
    assert isinstance(error, TransientMediaError if transient else PermanentMediaError)
    assert f"HTTP {status}" in str(error)


def test_unknown_id_reason_is_clear() -> None:
    error = graph_error(400, {"error": {"code": 100, "message": "does not exist"}}, "77")
    assert str(error).startswith("unknown or expired media id 77")


def test_backoff_doubles_with_jitter_and_cap() -> None:
    rng = random.Random(7)
    for attempt, full in ((1, 1.0), (2, 2.0), (3, 4.0), (10, 30.0)):
        delay = retry_delay(attempt, base=1.0, cap=30.0, rng=rng)
        assert full / 2 <= delay <= full
