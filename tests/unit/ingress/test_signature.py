"""The signature check works on raw bytes, in constant time, with rotated secrets."""

from __future__ import annotations

import json
from pathlib import Path

from baton_ingress.signature import sign, signature_matches

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "non_ascii_escaped.json"


def test_signature_of_the_raw_bytes_matches() -> None:
    body = FIXTURE.read_bytes()
    assert signature_matches(body, sign(body, "s3cret"), ["s3cret"])


def test_reserialized_json_does_not_match() -> None:
    body = FIXTURE.read_bytes()
    reserialized = json.dumps(json.loads(body), ensure_ascii=False).encode()
    assert not signature_matches(reserialized, sign(body, "s3cret"), ["s3cret"])


def test_any_rotated_secret_matches() -> None:
    body = b'{"entry": []}'
    assert signature_matches(body, sign(body, "new"), ["old", "new"])
    assert signature_matches(body, sign(body, "old"), ["old", "new"])
    assert not signature_matches(body, sign(body, "other"), ["old", "new"])


def test_malformed_headers_do_not_match() -> None:
    body = b"{}"
    digest = sign(body, "k").removeprefix("sha256=")
    for header in (digest, "sha1=" + digest, "sha256=", "sha256=zz", "", "sha256=" + digest[:-1]):
        assert not signature_matches(body, header, ["k"])
    assert not signature_matches(body, sign(body, "k"), [])
