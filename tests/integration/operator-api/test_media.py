"""Customer media: downloaded at once from the WhatsApp emulator, stored, served to operators.

The emulator runs over real HTTP with its signed, expiring download URLs and bearer-token
check; faults are injected with `POST /_emulator/media/faults`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from baton_devtools.serving import serving
from baton_devtools.whatsapp.app import create_app as create_emulator
from baton_devtools.whatsapp.settings import WaEmulatorSettings
from baton_devtools.whatsapp.state import WaState
from baton_operator_api.context import ServiceContext
from baton_operator_api.db import media as media_repo
from baton_operator_api.main import create_app
from baton_operator_api.media.worker import MediaDownloader
from baton_operator_api.settings import OperatorApiSettings
from baton_shared.events import InboundMedia, InboundMessage, MessageReceived, MessageType, utcnow
from baton_shared.events.ids import conversation_id_for
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, auth, new_wa_id

pytestmark = pytest.mark.integration

WA_TOKEN = "test-media-access-token"
MAX_BYTES = 64 * 1024
# A 1x1 PNG and the first page of an OGG/Opus stream: real headers, small bodies.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
OGG = b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead\x01\x01\x38\x01\x80\xbb" + bytes(4000)


@dataclass
class Emulator:
    """The WhatsApp emulator on a free local port."""

    url: str
    state: WaState
    http: httpx.AsyncClient

    def customer_media(self, data: bytes, mime_type: str) -> InboundMedia:
        """Store a file as a customer's upload; its webhook metadata (sha256 in base64)."""
        item = self.state.media.add(data, mime_type, PHONE_NUMBER_ID)
        sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
        return InboundMedia(id=item.id, mime_type=mime_type, sha256=sha)

    async def fault(self, **rule: Any) -> None:
        """Inject a media fault."""
        response = await self.http.post("/_emulator/media/faults", json=rule)
        response.raise_for_status()


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[Emulator]:
    """The emulator app on 127.0.0.1:<free port> (no ingress: status webhooks off)."""
    settings = WaEmulatorSettings(
        wa_access_token=WA_TOKEN, ingress_webhook_url="http://127.0.0.1:9/webhook"
    )
    app: FastAPI = create_emulator(settings)
    app.state.emulator.config = app.state.emulator.config.model_copy(update={"statuses": []})
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield Emulator(url, app.state.emulator, http)


@pytest.fixture
def settings(
    database_url: str, redis_url: str, prefix: str, admin_token: str, emulator: Emulator
) -> OperatorApiSettings:
    """Operator-api settings pointing at the emulator, with fast retries and a small cap."""
    return OperatorApiSettings(
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=prefix,
        baton_env="test",
        consumer_block_ms=50,
        wa_graph_url=emulator.url,
        wa_access_token=WA_TOKEN,
        BATON_BOOTSTRAP_ADMIN_TOKEN=admin_token,
        BATON_BOOTSTRAP_ADMIN_NAME=f"admin-{uuid.uuid4().hex[:6]}",
        OPERATOR_API_MEDIA_MAX_BYTES=MAX_BYTES,
        OPERATOR_API_MEDIA_RETRY_BASE_SECONDS=0.05,
        OPERATOR_API_MEDIA_RETRY_MAX_SECONDS=0.2,
        OPERATOR_API_MEDIA_POLL_SECONDS=0.1,
    )


def media_message(
    wa_id: str, media: InboundMedia, kind: MessageType, text: str | None = None
) -> MessageReceived:
    """A customer's media message as the ingress publishes it."""
    message = InboundMessage(
        message_id=f"wamid.{uuid.uuid4().hex}",
        phone_number_id=PHONE_NUMBER_ID,
        wa_id=wa_id,
        customer_name="Ana",
        timestamp=utcnow(),
        type=kind,
        text=text,
        media=media,
    )
    return MessageReceived.create(
        message, producer="test", conversation_id=conversation_id_for(PHONE_NUMBER_ID, wa_id)
    )


async def send(
    bus: Bus, client: httpx.AsyncClient, token: str, event: MessageReceived, status: str
) -> dict[str, Any]:
    """Publish a media message; wait until its transcript entry's media has `status`."""
    await bus.publish(event)
    path = f"/api/v1/conversations/{event.conversation_id}/messages"

    async def media_item() -> dict[str, Any] | None:
        r = await client.get(path, headers=auth(token))
        if r.status_code != 200:
            return None
        for m in r.json()["items"]:
            if m["wa_message_id"] == event.payload.message_id and m["media"] is not None:
                item: dict[str, Any] = m["media"]
                return item if item["status"] == status else None
        return None

    return await wait_until(media_item, what=f"media {status} in the transcript")


async def test_image_and_voice_note_are_served_byte_identical(
    bus: Bus, client: httpx.AsyncClient, admin_token: str, emulator: Emulator
) -> None:
    """Downloaded at once and served with their own types, checksum ETag, private caching."""
    wa_id = new_wa_id()
    image = emulator.customer_media(PNG, "image/png")
    voice = emulator.customer_media(OGG, "audio/ogg; codecs=opus").model_copy(
        update={"voice": True}
    )
    shown = await send(
        bus,
        client,
        admin_token,
        media_message(wa_id, image, MessageType.IMAGE, "look"),
        "downloaded",
    )
    assert shown["url"] == f"/api/v1/media/{image.id}"
    assert (shown["type"], shown["mime_type"], shown["size"]) == ("image", "image/png", len(PNG))
    heard = await send(
        bus, client, admin_token, media_message(wa_id, voice, MessageType.AUDIO), "downloaded"
    )
    assert heard["voice"] is True

    for item, data, mime in ((shown, PNG, "image/png"), (heard, OGG, "audio/ogg")):
        r = await client.get(item["url"], headers=auth(admin_token))
        assert r.status_code == 200
        assert r.content == data
        assert r.headers["content-type"].startswith(mime)
        assert r.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert r.headers["cache-control"].startswith("private")
        assert r.headers["content-disposition"].startswith("inline")
        again = await client.get(
            item["url"], headers={**auth(admin_token), "If-None-Match": r.headers["etag"]}
        )
        assert again.status_code == 304
    assert emulator.state.media.downloads[image.id] == 1
    assert emulator.state.media.downloads[voice.id] == 1


async def test_document_keeps_its_filename(
    bus: Bus, client: httpx.AsyncClient, admin_token: str, emulator: Emulator
) -> None:
    """A document is served as an attachment under the customer's filename."""
    pdf = b"%PDF-1.4\n" + secrets.token_bytes(2000)
    doc = emulator.customer_media(pdf, "application/pdf").model_copy(
        update={"filename": "factura março.pdf"}
    )
    event = media_message(new_wa_id(), doc, MessageType.DOCUMENT, "my invoice")
    item = await send(bus, client, admin_token, event, "downloaded")
    assert item["filename"] == "factura março.pdf"
    r = await client.get(item["url"], headers=auth(admin_token))
    assert r.content == pdf
    assert r.headers["content-type"] == "application/pdf"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="factura mar_o.pdf"')
    assert "filename*=UTF-8''factura%20mar%C3%A7o.pdf" in disposition


async def test_expired_url_is_fetched_again(
    bus: Bus, client: httpx.AsyncClient, admin_token: str, emulator: Emulator
) -> None:
    """A download URL that expired before the download (404) is replaced via GET /{media_id}."""
    image = emulator.customer_media(PNG + b"expired", "image/png")
    await emulator.fault(stage="retrieve", media_id=image.id, expire_url=True)
    event = media_message(new_wa_id(), image, MessageType.IMAGE)
    item = await send(bus, client, admin_token, event, "downloaded")
    r = await client.get(item["url"], headers=auth(admin_token))
    assert r.content == PNG + b"expired"
    assert emulator.state.media.downloads[image.id] == 1
    assert not [f for f, _ in emulator.state.media.faults if f.media_id == image.id]


async def test_transient_faults_are_retried(
    bus: Bus,
    client: httpx.AsyncClient,
    admin_token: str,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Graph 131016, then a 503 on the download: pending with the reason, then downloaded;
    the access token appears in no log line."""
    caplog.set_level(logging.DEBUG)
    image = emulator.customer_media(PNG + b"transient", "image/png")
    await emulator.fault(stage="retrieve", media_id=image.id, code=131016, count=1000)
    event = media_message(new_wa_id(), image, MessageType.IMAGE)
    pending = await send(bus, client, admin_token, event, "pending")

    async def reason() -> dict[str, Any] | None:
        r = await client.get(pending["url"], headers=auth(admin_token))
        body: dict[str, Any] = r.json()
        return body if r.status_code == 409 and "131016" in body["detail"] else None

    answer = await wait_until(reason, what="409 with the transient reason")
    assert answer["error"] == "media_pending"
    await emulator.http.delete("/_emulator/media/faults")
    await emulator.fault(stage="download", media_id=image.id, http_status=503, count=2)
    await send(bus, client, admin_token, event, "downloaded")  # re-published: a no-op
    r = await client.get(pending["url"], headers=auth(admin_token))
    assert r.status_code == 200
    assert r.content == PNG + b"transient"
    assert "retry in" in caplog.text
    assert WA_TOKEN not in caplog.text


async def test_unknown_media_id_fails_with_a_reason(
    bus: Bus, client: httpx.AsyncClient, admin_token: str
) -> None:
    """An id WhatsApp does not know (e.g. older than 7 days) is `failed`, shown with why."""
    ghost = InboundMedia(id="987654321012345", mime_type="image/jpeg")
    item = await send(
        bus, client, admin_token, media_message(new_wa_id(), ghost, MessageType.IMAGE), "failed"
    )
    assert "unknown or expired media id" in item["reason"]
    r = await client.get(item["url"], headers=auth(admin_token))
    assert r.status_code == 409
    assert r.json()["error"] == "media_failed"
    assert "unknown or expired media id" in r.json()["detail"]


async def test_oversize_media_is_refused(
    bus: Bus, client: httpx.AsyncClient, admin_token: str, emulator: Emulator
) -> None:
    """A file over OPERATOR_API_MEDIA_MAX_BYTES is never downloaded: `failed`, too large."""
    video = emulator.customer_media(secrets.token_bytes(MAX_BYTES + 1), "video/mp4")
    event = media_message(new_wa_id(), video, MessageType.VIDEO)
    item = await send(bus, client, admin_token, event, "failed")
    assert "too large" in item["reason"]
    assert emulator.state.media.downloads[video.id] == 0


async def test_two_workers_never_download_the_same_item_twice(
    ctx: ServiceContext, settings: OperatorApiSettings, emulator: Emulator
) -> None:
    """Three workers (the app's and two more) share 30 downloads: each file fetched once."""
    items = [emulator.customer_media(secrets.token_bytes(500), "image/jpeg") for _ in range(30)]
    async with ctx.db.session() as session:
        for media in items:
            await media_repo.add_pending(
                session,
                media_id=media.id,
                conversation_id="c-" + media.id,
                wa_message_id="wamid." + media.id,
                kind="image",
                voice=False,
                mime_type=media.mime_type,
                filename=None,
                webhook_sha256=media.sha256,
            )
    stop = asyncio.Event()
    workers = [MediaDownloader(ctx.db, settings, asyncio.Event()) for _ in range(2)]
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    ctx.media_wake.set()
    try:

        async def all_done() -> bool:
            async with ctx.db.session() as session:
                rows = [await media_repo.get(session, m.id) for m in items]
            return all(r is not None and r.status == media_repo.DOWNLOADED for r in rows)

        await wait_until(all_done, timeout=30, what="30 downloads")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert all(emulator.state.media.downloads[m.id] == 1 for m in items)


async def test_media_past_the_retention_period_loses_its_bytes_not_its_record(
    bus: Bus, client: httpx.AsyncClient, admin_token: str, emulator: Emulator, ctx: ServiceContext
) -> None:
    wa_id = new_wa_id()
    old, new = (emulator.customer_media(secrets.token_bytes(300), "image/jpeg") for _ in "ab")
    for media in (old, new):
        await send(
            bus, client, admin_token, media_message(wa_id, media, MessageType.IMAGE), "downloaded"
        )
    async with ctx.db.session() as session:
        await session.execute(
            text(
                "UPDATE media SET downloaded_at = now() - interval '31 days' WHERE media_id = :id"
            ),
            {"id": old.id},
        )

    assert await media_repo.expire_all(ctx.db, timedelta(days=30)) == 1
    assert await media_repo.expire_all(ctx.db, timedelta(days=30)) == 0  # nothing left to do

    gone = await client.get(f"/api/v1/media/{old.id}", headers=auth(admin_token))
    assert gone.status_code == 410
    assert gone.json()["error"] == "media_expired"
    kept = await client.get(f"/api/v1/media/{new.id}", headers=auth(admin_token))
    assert kept.status_code == 200
    r = await client.get(
        f"/api/v1/conversations/{conversation_id_for(PHONE_NUMBER_ID, wa_id)}/messages",
        headers=auth(admin_token),
    )
    statuses = {m["media"]["id"]: m["media"]["status"] for m in r.json()["items"]}
    assert statuses == {old.id: "expired", new.id: "downloaded"}
    async with ctx.db.session() as session:
        row = await media_repo.get(session, old.id, content=True)
    assert row is not None
    assert row.content is None


async def test_media_endpoint_needs_a_token(client: httpx.AsyncClient, admin_token: str) -> None:
    """401 without a token; a clear 404 for an unknown media id."""
    r = await client.get("/api/v1/media/123")
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    r = await client.get("/api/v1/media/123", headers=auth(admin_token))
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "detail": "no media 123"}


@pytest.mark.parametrize(("days", "runs"), [(0, False), (30, True)])
def test_the_retention_job_runs_only_when_a_retention_is_set(
    settings: OperatorApiSettings, days: int, runs: bool
) -> None:
    app = create_app(settings.model_copy(update={"media_retention_days": days}))
    names = [getattr(w, "name", "") for w in app.state.ctx.runtime.workers]
    assert ("MediaRetention" in names) is runs
