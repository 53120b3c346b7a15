"""The WhatsApp emulator's media faults (`/_emulator/media/faults`) and download counts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from baton_devtools.whatsapp.app import create_app
from baton_devtools.whatsapp.settings import WaEmulatorSettings
from baton_devtools.whatsapp.state import WaState

TOKEN = "media-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def wa() -> AsyncIterator[tuple[httpx.AsyncClient, WaState]]:
    """The emulator in-process, and its state."""
    app = create_app(WaEmulatorSettings(wa_access_token=TOKEN))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wa") as http:
        yield http, app.state.emulator


async def test_retrieve_fault_answers_the_graph_error_once(
    wa: tuple[httpx.AsyncClient, WaState],
) -> None:
    http, state = wa
    item = state.media.add(b"jpeg bytes", "image/jpeg", "1")
    r = await http.post("/_emulator/media/faults", json={"stage": "retrieve", "code": 131016})
    assert r.json()["faults"] == [{"stage": "retrieve", "count": 1, "code": 131016,
                                   "expire_url": False, "remaining": 1}]  # fmt: skip
    r = await http.get(f"/v21.0/{item.id}", headers=AUTH)
    assert r.status_code >= 400
    assert r.json()["error"]["code"] == 131016
    r = await http.get(f"/v21.0/{item.id}", headers=AUTH)
    assert r.status_code == 200


async def test_unknown_object_fault_and_media_id_filter(
    wa: tuple[httpx.AsyncClient, WaState],
) -> None:
    http, state = wa
    a = state.media.add(b"a", "image/png", "1")
    b = state.media.add(b"b", "image/png", "1")
    await http.post("/_emulator/media/faults", json={"stage": "retrieve", "code": 100,
                                                      "media_id": b.id})  # fmt: skip
    assert (await http.get(f"/v21.0/{a.id}", headers=AUTH)).status_code == 200
    r = await http.get(f"/v21.0/{b.id}", headers=AUTH)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == 100


async def test_expired_url_then_download_fault_then_the_file(
    wa: tuple[httpx.AsyncClient, WaState],
) -> None:
    http, state = wa
    item = state.media.add(b"OggS voice", "audio/ogg; codecs=opus", "1")
    await http.post("/_emulator/media/faults", json={"stage": "retrieve", "expire_url": True})
    await http.post("/_emulator/media/faults", json={"stage": "download", "http_status": 503})
    expired = (await http.get(f"/v21.0/{item.id}", headers=AUTH)).json()["url"]
    assert (await http.get(expired, headers=AUTH)).status_code == 404
    fresh = (await http.get(f"/v21.0/{item.id}", headers=AUTH)).json()["url"]
    assert (await http.get(fresh)).status_code == 401  # the token is required
    assert (await http.get(fresh, headers=AUTH)).status_code == 503
    r = await http.get(fresh, headers=AUTH)
    assert (r.status_code, r.content) == (200, b"OggS voice")
    assert state.media.downloads[item.id] == 1
    assert (await http.get("/_emulator/media/faults")).json() == {"faults": []}


@pytest.mark.parametrize(
    "rule",
    [
        {"stage": "retrieve"},
        {"stage": "retrieve", "code": 4, "expire_url": True},
        {"stage": "download"},
        {"stage": "download", "http_status": 500, "code": 4},
        {"stage": "upload", "code": 4},
    ],
)
async def test_invalid_media_faults_are_refused(
    wa: tuple[httpx.AsyncClient, WaState], rule: dict[str, object]
) -> None:
    http, _ = wa
    assert (await http.post("/_emulator/media/faults", json=rule)).status_code == 422
    assert (await http.delete("/_emulator/media/faults")).json() == {"success": True}
