"""WhatsApp emulator: what WhatsApp checks after answering a send (media links fetched, media
ids in the store, reaction targets), the template registry, and webhook redelivery."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from baton_devtools.serving import ServerThread
from baton_devtools.whatsapp.app import create_app
from baton_devtools.whatsapp.settings import WaEmulatorSettings
from baton_devtools.whatsapp.state import WaState

TOKEN = "access-token"
PHONE_ID = "100000000000001"
SEND = f"/v21.0/{PHONE_ID}/messages"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CUSTOMER = "447700900123"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)


@dataclass
class Site:
    """A real HTTP server: media files to fetch, and a webhook receiver that refuses the
    first `refuse` posts with 503."""

    url: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    posts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    refuse: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def statuses_for(self, wamid: str, *, accepted_only: bool = False) -> list[dict[str, Any]]:
        with self.lock:
            posts = list(self.posts)
        found = []
        for answered, payload in posts:
            if accepted_only and answered != 200:
                continue
            for entry in payload.get("entry", []):
                for change in entry.get("changes", []):
                    statuses = change.get("value", {}).get("statuses", [])
                    found += [s for s in statuses if s.get("id") == wamid]
        return found

    def message_posts(self, wamid: str) -> list[int]:
        """The answers given to each delivery of the customer message `wamid`."""
        with self.lock:
            posts = list(self.posts)
        return [
            answered
            for answered, payload in posts
            for entry in payload.get("entry", [])
            for change in entry.get("changes", [])
            for message in change.get("value", {}).get("messages", [])
            if message.get("id") == wamid
        ]


FILES: dict[str, tuple[bytes, str | None]] = {
    "/ok.jpg": (b"\xff\xd8\xff" + bytes(64), "image/jpeg"),
    "/page.html": (b"<html>not media</html>", "text/html; charset=utf-8"),
    "/song.mp3": (b"ID3" + bytes(64), "audio/mpeg"),
    "/note.ogg": (b"OggS" + bytes(64), "audio/ogg"),
    "/blob": (PNG, "application/octet-stream"),
    "/empty.png": (b"", "image/png"),
}


def site_app(site: Site) -> FastAPI:
    app = FastAPI()

    @app.get("/redirect")
    async def redirect() -> RedirectResponse:
        site.hits["/redirect"] += 1
        return RedirectResponse("/ok.jpg", status_code=302)

    @app.get("/slow.jpg")
    async def slow() -> Response:
        site.hits["/slow.jpg"] += 1
        await asyncio.sleep(1.5)
        return Response(b"\xff\xd8\xff", media_type="image/jpeg")

    @app.get("/{name}")
    async def media(name: str) -> Response:
        path = f"/{name}"
        site.hits[path] += 1
        if path not in FILES:
            return Response("Not Found", status_code=404)
        data, mime = FILES[path]
        response = Response(data)
        if mime is not None:
            response.headers["content-type"] = mime
        return response

    @app.post("/webhook")
    async def webhook(request: Request) -> Response:
        payload = json.loads(await request.body())
        with site.lock:
            answered = 503 if site.refuse > 0 else 200
            site.refuse = max(0, site.refuse - 1)
            site.posts.append((answered, payload))
        return Response("OK" if answered == 200 else "down", status_code=answered)

    return app


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    found = Site()
    with ServerThread(site_app(found)) as server:
        found.url = server.url
        yield found


def make_app(site: Site, **settings: Any) -> FastAPI:
    config = WaEmulatorSettings(
        wa_access_token=TOKEN, ingress_webhook_url=f"{site.url}/webhook", **settings
    )
    return create_app(config)


@pytest.fixture
async def wa(site: Site) -> AsyncIterator[tuple[httpx.AsyncClient, WaState]]:
    app = make_app(site)
    state: WaState = app.state.emulator
    state.config.status_delay_ms = 0
    state.config.webhook_retry_ms = [10, 20, 40]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wa") as http:
        yield http, state
        await state.aclose()


def msg(kind: str, content: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": CUSTOMER, "type": kind, kind: content}


async def outcome(
    http: httpx.AsyncClient, state: WaState, site: Site, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """Send `body` (it must be answered 200); the statuses WhatsApp then delivers."""
    answer = await http.post(SEND, json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    await state.drain()
    return site.statuses_for(answer.json()["messages"][0]["id"])


def failure(statuses: list[dict[str, Any]]) -> tuple[int, str] | None:
    """(code, details) of the failed status, or None if the message was not failed."""
    for status in statuses:
        if status["status"] == "failed":
            [error] = status["errors"]
            return error["code"], error["error_data"]["details"]
    return None


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def upload(http: httpx.AsyncClient, mime_type: str, data: bytes = PNG) -> str:
    files = {"file": ("f", data, mime_type)}
    form = {"messaging_product": "whatsapp"}
    answer = await http.post(f"/v21.0/{PHONE_ID}/media", data=form, files=files, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


# --- Media links: fetched after the answer; 131053 by status webhook when they cannot be ---

LINKS: list[tuple[str, str, str, dict[str, Any], str | None]] = [
    ("jpeg image", "image", "/ok.jpg", {}, None),
    ("redirect followed", "image", "/redirect", {}, None),
    ("no declared type", "image", "/blob", {}, None),
    ("any file as a document", "document", "/page.html", {"filename": "p.html"}, None),
    ("voice note ogg", "audio", "/note.ogg", {"voice": True}, None),
    ("404", "image", "/missing.jpg", {}, "http code 404"),
    ("html as an image", "image", "/page.html", {}, "text/html is not supported"),
    ("mp3 as a voice note", "audio", "/song.mp3", {"voice": True}, "audio/ogg"),
    ("empty file", "image", "/empty.png", {}, "empty"),
]


@pytest.mark.parametrize(
    ("kind", "path", "extra", "problem"), [c[1:] for c in LINKS], ids=[c[0] for c in LINKS]
)
async def test_media_links_are_fetched(
    wa: tuple[httpx.AsyncClient, WaState],
    site: Site,
    kind: str,
    path: str,
    extra: dict[str, Any],
    problem: str | None,
) -> None:
    http, state = wa
    statuses = await outcome(http, state, site, msg(kind, {"link": site.url + path, **extra}))
    found = failure(statuses)
    if problem is None:
        assert found is None, statuses
        assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    else:
        assert found is not None, statuses
        assert found[0] == 131053
        assert problem in found[1]
        assert [s["status"] for s in statuses] == ["failed"]


async def test_an_unreachable_link_fails_fast(
    wa: tuple[httpx.AsyncClient, WaState], site: Site
) -> None:
    http, state = wa
    started = time.monotonic()
    statuses = await outcome(http, state, site, msg("image", {"link": closed_port() + "/a.jpg"}))
    found = failure(statuses)
    assert found is not None
    assert (found[0], "Downloading media from weblink failed" in found[1]) == (131053, True)
    assert time.monotonic() - started < 5


async def test_a_link_slower_than_the_fetch_timeout_fails(
    wa: tuple[httpx.AsyncClient, WaState], site: Site
) -> None:
    http, state = wa
    await http.post("/_emulator/config", json={"media_fetch_timeout_ms": 200})
    started = time.monotonic()
    statuses = await outcome(http, state, site, msg("image", {"link": site.url + "/slow.jpg"}))
    found = failure(statuses)
    assert found is not None
    assert (found[0], "Downloading media from weblink failed" in found[1]) == (131053, True)
    assert time.monotonic() - started < 1.4


async def test_media_in_headers_is_fetched_too(
    wa: tuple[httpx.AsyncClient, WaState], site: Site
) -> None:
    http, state = wa
    missing = {"link": site.url + "/gone.jpg"}
    interactive = {
        "type": "button",
        "header": {"type": "image", "image": missing},
        "body": {"text": "Pick"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]},
    }
    template = {
        "name": "hello_world",
        "language": {"code": "en_US"},
        "components": [{"type": "header", "parameters": [{"type": "image", "image": missing}]}],
    }
    for body in (msg("interactive", interactive), msg("template", template)):
        found = failure(await outcome(http, state, site, body))
        assert found is not None
        assert found[0] == 131053


async def test_reachable_hosts_are_not_fetched_and_fetches_are_cached(
    wa: tuple[httpx.AsyncClient, WaState], site: Site
) -> None:
    http, state = wa
    assert state.config.reachable_media_hosts == ["example.com", "example.net", "example.org"]
    for link in ("https://example.com/a.jpg", "https://cdn.example.org/b.png"):
        assert failure(await outcome(http, state, site, msg("image", {"link": link}))) is None
    assert state.links.fetches == 0
    link = site.url + "/ok.jpg?cached"
    for _ in range(2):
        assert failure(await outcome(http, state, site, msg("image", {"link": link}))) is None
    assert state.links.fetches == 1  # Meta caches a link's media for ten minutes
    dead = closed_port()
    await http.post("/_emulator/config", json={"reachable_media_hosts": ["127.0.0.1"]})
    ok = await outcome(http, state, site, msg("image", {"link": dead + "/x.jpg"}))
    assert failure(ok) is None
    assert state.links.fetches == 1


def test_media_hosts_and_retries_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_EMULATOR_REACHABLE_MEDIA_HOSTS", "cdn.test, Media.Example.net")
    monkeypatch.setenv("WA_EMULATOR_WEBHOOK_RETRY_MS", "0,50,200")
    monkeypatch.setenv("WA_EMULATOR_MEDIA_FETCH_TIMEOUT_MS", "500")
    config = create_app(WaEmulatorSettings()).state.emulator.config
    assert config.reachable_media_hosts == ["cdn.test", "media.example.net"]
    assert (config.webhook_retry_ms, config.media_fetch_timeout_ms) == ([0, 50, 200], 500)
    monkeypatch.setenv("WA_EMULATOR_WEBHOOK_RETRY_MS", "")
    assert WaEmulatorSettings().wa_emulator_webhook_retry_ms == []
    monkeypatch.setenv("WA_EMULATOR_WEBHOOK_RETRY_MS", ",".join(["1"] * 21))
    with pytest.raises(ValueError, match="at most 20"):
        WaEmulatorSettings()


# --- Media ids: must name stored media of a type the message takes ---


async def test_media_ids_must_name_stored_media(
    wa: tuple[httpx.AsyncClient, WaState], site: Site
) -> None:
    http, state = wa
    png = await upload(http, "image/png")
    pdf = await upload(http, "application/pdf", b"%PDF-1.4")
    assert failure(await outcome(http, state, site, msg("image", {"id": png}))) is None
    assert failure(await outcome(http, state, site, msg("document", {"id": png}))) is None
    found = failure(await outcome(http, state, site, msg("image", {"id": pdf})))
    assert found is not None
    assert (found[0], "application/pdf" in found[1]) == (131053, True)
    found = failure(await outcome(http, state, site, msg("sticker", {"id": "1234567890"})))
    assert found is not None
    assert (found[0], "not found" in found[1]) == (131053, True)
    # A customer's media (received by webhook) is in the store too.
    inbound = await http.post("/_emulator/inbound", json={"from": CUSTOMER, "type": "image"})
    wamid = inbound.json()["message_id"]
    with site.lock:
        [received] = [
            m["image"]["id"]
            for _, payload in site.posts
            for m in payload["entry"][0]["changes"][0]["value"].get("messages", [])
            if m["id"] == wamid
        ]
    back = msg("image", {"id": received})
    assert failure(await outcome(http, state, site, back)) is None


# --- Reactions: not to a reaction, not to a message older than 30 days ---


async def test_reaction_targets(wa: tuple[httpx.AsyncClient, WaState], site: Site) -> None:
    http, state = wa
    ours = (await http.post(SEND, json=msg("text", {"body": "hi"}), headers=AUTH)).json()
    our_id = ours["messages"][0]["id"]
    text = await http.post("/_emulator/inbound", json={"from": CUSTOMER, "text": "hello"})
    stale = int(time.time()) - 31 * 24 * 3600
    old = await http.post(
        "/_emulator/inbound", json={"from": CUSTOMER, "text": "old", "timestamp": stale}
    )
    theirs = await http.post(
        "/_emulator/inbound",
        json={"from": CUSTOMER, "type": "reaction", "reply_to": our_id, "text": "\U0001f44d"},
    )

    async def react(target: str) -> tuple[int, str] | None:
        body = msg("reaction", {"message_id": target, "emoji": "\u2764"})
        return failure(await outcome(http, state, site, body))

    assert await react(text.json()["message_id"]) is None
    assert await react(our_id) is None
    assert await react("wamid.NEVER_SEEN") is None  # unknown to the emulator: let through
    reaction_to_reaction = await react(theirs.json()["message_id"])
    assert reaction_to_reaction is not None
    assert reaction_to_reaction[0] == 131009
    too_old = await react(old.json()["message_id"])
    assert too_old is not None
    assert (too_old[0], "30 days" in too_old[1]) == (131009, True)
    mine = (await http.post(SEND, json=msg("reaction", {"message_id": our_id, "emoji": "y"}),
                            headers=AUTH)).json()["messages"][0]["id"]  # fmt: skip
    on_mine = await react(mine)
    assert on_mine is not None
    assert on_mine[0] == 131009


async def test_a_reaction_in_a_raw_webhook_is_known(
    wa: tuple[httpx.AsyncClient, WaState], site: Site
) -> None:
    http, state = wa
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000001", "phone_number_id": PHONE_ID},
        "messages": [{"from": CUSTOMER, "id": "wamid.RAW_REACTION", "type": "reaction",
                      "timestamp": str(int(time.time())),
                      "reaction": {"message_id": "wamid.X", "emoji": "x"}}],
    }  # fmt: skip
    payload = {"object": "whatsapp_business_account",
               "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]}  # fmt: skip
    assert (await http.post("/_emulator/webhook", json=payload)).status_code == 200
    body = msg("reaction", {"message_id": "wamid.RAW_REACTION", "emoji": "y"})
    found = failure(await outcome(http, state, site, body))
    assert found is not None
    assert found[0] == 131009


# --- Templates: a registry of name, language, body parameter count and status ---


def template(name: str, language: str = "en_US", params: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "language": {"code": language}}
    if params:
        parameters = [{"type": "text", "text": f"p{i}"} for i in range(params)]
        body["components"] = [{"type": "body", "parameters": parameters}]
    return msg("template", body)


async def sync_code(http: httpx.AsyncClient, body: dict[str, Any]) -> tuple[int, int | None]:
    answer = await http.post(SEND, json=body, headers=AUTH)
    code = None if answer.status_code == 200 else answer.json()["error"]["code"]
    return answer.status_code, code


async def test_the_built_in_templates(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, state = wa
    state.config.statuses = []
    listed = (await http.get("/_emulator/templates")).json()["templates"]
    assert [(t["name"], t["language"], t["parameters"], t["status"]) for t in listed] == [
        ("hello_world", "en_US", 0, "APPROVED"),
        ("order_confirmation", "en_US", 2, "APPROVED"),
        ("order_update", "en_US", 2, "APPROVED"),
        ("order_update", "es", 2, "APPROVED"),
    ]
    assert await sync_code(http, template("order_update", params=2)) == (200, None)
    assert await sync_code(http, template("order_update", "es", 2)) == (200, None)
    assert await sync_code(http, template("hello_world")) == (200, None)
    assert await sync_code(http, template("order_update", "fr", 2)) == (404, 132001)
    assert await sync_code(http, template("no_such_template")) == (404, 132001)
    assert await sync_code(http, template("order_update", params=1)) == (400, 132000)
    assert await sync_code(http, template("hello_world", params=1)) == (400, 132000)
    answer = await http.post(SEND, json=template("nope", "xx_XX"), headers=AUTH)
    error = answer.json()["error"]
    assert error["message"] == "(#132001) Template name does not exist in the translation"
    assert error["error_data"]["details"] == "template name (nope) does not exist in xx_XX"
    assert len(state.messages) == 3  # refusals record nothing


async def test_the_registry_can_be_changed(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, state = wa
    state.config.statuses = []
    new = {"name": "pickup_ready", "language": "de", "parameters": ["name"], "category": "utility"}
    assert (await http.post("/_emulator/templates", json=new)).status_code == 200
    assert await sync_code(http, template("pickup_ready", "de", 1)) == (200, None)
    for status, code in (("PAUSED", 132015), ("DISABLED", 132016), ("PENDING", 132001)):
        await http.post("/_emulator/templates", json={**new, "status": status})
        http_status = 404 if code == 132001 else 400
        assert await sync_code(http, template("pickup_ready", "de", 1)) == (http_status, code)
    bad = await http.post("/_emulator/templates", json={"name": "x", "language": "en", "oops": 1})
    assert bad.status_code == 422
    gone = await http.delete("/_emulator/templates/order_update/es")
    assert gone.json() == {"success": True}
    assert await sync_code(http, template("order_update", "es", 2)) == (404, 132001)
    assert (await http.delete("/_emulator/templates/order_update/es")).status_code == 404
    await http.delete("/_emulator/templates")  # back to the start
    assert await sync_code(http, template("order_update", "es", 2)) == (200, None)
    assert await sync_code(http, template("pickup_ready", "de", 1)) == (404, 132001)


async def test_templates_from_a_file_replace_the_built_in_ones(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text(
        "templates:\n"
        "  - name: order_update\n    language: en_US\n    category: utility\n"
        "    description: Where the order is.\n    parameters: [order_number, status]\n"
        "  - {name: promo, language: en_US, status: PAUSED}\n"
    )
    app = make_app(site, wa_emulator_templates_file=path)
    state: WaState = app.state.emulator
    state.config.statuses = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wa") as http:
        assert await sync_code(http, template("order_update", params=2)) == (200, None)
        assert await sync_code(http, template("promo")) == (400, 132015)
        assert await sync_code(http, template("hello_world")) == (404, 132001)
    await state.aclose()
    path.write_text("templates:\n  - {name: x}\n")
    with pytest.raises(ValueError, match="invalid templates"):
        make_app(site, wa_emulator_templates_file=path)


# --- Webhook redelivery: anything but 200 is delivered again, on a bounded schedule ---


async def test_a_refused_customer_message_is_delivered_again(
    wa: tuple[httpx.AsyncClient, WaState], site: Site
) -> None:
    http, state = wa
    site.refuse = 2
    answer = await http.post("/_emulator/inbound", json={"from": CUSTOMER, "text": "hi"})
    assert answer.json()["webhook_status"] == 503
    assert answer.json()["retrying"] is True
    await state.drain()
    assert site.message_posts(answer.json()["message_id"]) == [503, 503, 200]
    site.refuse = 1
    once = await http.post("/_emulator/inbound?retry=false", json={"from": CUSTOMER, "text": "x"})
    assert "retrying" not in once.json()
    await state.drain()
    assert site.message_posts(once.json()["message_id"]) == [503]


async def test_a_refused_status_is_delivered_again_and_recorded(
    wa: tuple[httpx.AsyncClient, WaState], site: Site
) -> None:
    http, state = wa
    site.refuse = 1  # the `sent` status
    statuses = await outcome(http, state, site, msg("text", {"body": "hello"}))
    assert sorted(s["status"] for s in statuses) == ["delivered", "read", "sent", "sent"]
    [record] = (await http.get("/_emulator/messages")).json()
    assert [(s["status"], s["webhook_status"], s["attempts"]) for s in record["statuses"]] == [
        ("sent", 200, 2),
        ("delivered", 200, 1),
        ("read", 200, 1),
    ]


async def test_redelivery_stops_at_the_end_of_the_schedule(
    wa: tuple[httpx.AsyncClient, WaState], site: Site
) -> None:
    http, state = wa
    site.refuse = 100
    try:
        answer = await http.post("/_emulator/inbound", json={"from": CUSTOMER, "text": "hi"})
        await state.drain()
        assert len(site.message_posts(answer.json()["message_id"])) == 4  # once + 3 retries
    finally:
        site.refuse = 0
    unsigned = await http.post("/_emulator/webhook?sign=false", json={"object": "x", "entry": []})
    assert "retrying" not in unsigned.json()  # Meta signs every webhook: never redelivered


@pytest.mark.parametrize(
    "schedule", [[1] * 21, [-1], [600_001]], ids=["too many", "negative", "too long"]
)
async def test_the_retry_schedule_is_bounded(
    wa: tuple[httpx.AsyncClient, WaState], schedule: list[int]
) -> None:
    http, state = wa
    answer = await http.post("/_emulator/config", json={"webhook_retry_ms": schedule})
    assert answer.status_code == 422
    assert state.config.webhook_retry_ms == [10, 20, 40]
    ok = await http.post("/_emulator/config", json={"webhook_retry_ms": []})
    assert ok.json()["webhook_retry_ms"] == []
