"""A webhook's event id is the UUID 5 of its body's SHA-256: it must never change, because a
redelivery of the same bytes is recognised (appended once) by it."""

from __future__ import annotations

import hashlib
import random
import uuid

from baton_ingress.api.routes.webhook import webhook_event_id, webhook_event_key

NAMESPACE = uuid.UUID("3b0f8e52-6a0e-4d5c-9d62-6f1e2b7c4a19")


def test_the_fast_key_is_the_uuid5_of_the_body_hash() -> None:
    rng = random.Random(7)
    for size in [0, 1, 2, 545, 4096, *(rng.randrange(2000) for _ in range(500))]:
        body = rng.randbytes(size)
        expected = uuid.uuid5(NAMESPACE, hashlib.sha256(body).hexdigest())
        assert webhook_event_key(body) == str(expected)
        assert webhook_event_id(body) == expected


def test_a_known_body_keeps_its_id() -> None:
    # Pinned: the id every deployed version gave this body.
    assert webhook_event_key(b'{"entry":[]}') == "4ce88c8a-8fcf-51cd-9715-6c76eca16db0"
