"""WhatsApp Cloud API emulator: validation, auth, records, faults, media and signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from baton_devtools.serving import ServerThread
from baton_devtools.whatsapp.app import create_app
from baton_devtools.whatsapp.settings import WaEmulatorSettings
from baton_devtools.whatsapp.state import WaState

SECRET = "app-secret"
TOKEN = "access-token"
PHONE_ID = "100000000000001"
SEND = f"/v21.0/{PHONE_ID}/messages"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CUSTOMER = "447700900123"


@dataclass
class Receiver:
    """A real HTTP webhook receiver that keeps every raw body and signature header."""

    url: str = ""
    posts: list[tuple[str | None, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[tuple[str | None, bytes]]:
        with self.lock:
            return list(self.posts)

    def statuses_for(self, wamid: str) -> list[dict[str, Any]]:
        found = []
        for _, raw in self.bodies():
            for entry in json.loads(raw).get("entry", []):  # other tests post odd payloads
                for change in entry.get("changes", []):
                    statuses = change.get("value", {}).get("statuses", [])
                    found += [s for s in statuses if s.get("id") == wamid]
        return found


def receiver_app(receiver: Receiver) -> FastAPI:
    app = FastAPI()

    @app.post("/webhook")
    async def webhook(request: Request) -> Response:
        body = await request.body()
        with receiver.lock:
            receiver.posts.append((request.headers.get("x-hub-signature-256"), body))
        return Response("OK")

    @app.post("/broken")
    async def broken() -> Response:
        return Response("down", status_code=503)

    return app


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    with ServerThread(receiver_app(rec)) as server:
        rec.url = server.url
        yield rec


def unused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/webhook"


async def make_client(ingress: str) -> tuple[httpx.AsyncClient, WaState]:
    settings = WaEmulatorSettings(
        wa_app_secret=SECRET, wa_access_token=TOKEN, ingress_webhook_url=ingress
    )
    app = create_app(settings)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wa")
    return http, app.state.emulator


@pytest.fixture
async def wa(receiver: Receiver) -> AsyncIterator[tuple[httpx.AsyncClient, WaState]]:
    http, state = await make_client(f"{receiver.url}/webhook")
    state.config.status_delay_ms = 0
    yield http, state
    await state.aclose()
    await http.aclose()


def msg(kind: str, content: Any, **extra: Any) -> dict[str, Any]:
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER}
    return {**body, "type": kind, kind: content, **extra}


def verify(signature: str | None, raw: bytes) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return signature is not None and hmac.compare_digest(signature, expected)


def buttons(n: int, title: str = "B") -> dict[str, Any]:
    replies = [
        {"type": "reply", "reply": {"id": f"b{i}", "title": f"{title}{i}"}} for i in range(n)
    ]
    return {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": replies}}


def rows(n: int, title: str = "Row") -> dict[str, Any]:
    row_list = [{"id": f"r{i}", "title": f"{title}{i}", "description": "d"} for i in range(n)]
    action = {"button": "Options", "sections": [{"title": "S", "rows": row_list}]}
    return {"type": "list", "body": {"text": "Pick"}, "action": action}


# A template the emulator knows (its built-in registry): the reference's example, two body
# parameters.
TEMPLATE = {
    "name": "order_confirmation",
    "language": {"code": "en_US"},
    "components": [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Jessica"}, {"type": "text", "text": "SKB-4"}],
        }
    ],
}
# Media sent by id must have been uploaded: the test uploads a file of this type first.
UPLOADED = {"image": "image/png", "audio": "audio/ogg", "sticker": "image/webp"}


async def upload(http: httpx.AsyncClient, mime_type: str, data: bytes = b"media") -> str:
    """Upload a file of `mime_type`; its media id."""
    files = {"file": ("f", data, mime_type)}
    form = {"messaging_product": "whatsapp"}
    answer = await http.post(f"/v21.0/{PHONE_ID}/media", data=form, files=files, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


VALID: list[tuple[str, dict[str, Any]]] = [
    ("text", msg("text", {"body": "hi", "preview_url": True})),
    ("text 4096", msg("text", {"body": "x" * 4096})),
    ("image link", msg("image", {"link": "https://example.com/a.jpg", "caption": "c" * 1024})),
    ("image id", msg("image", {"id": "UPLOADED"})),
    ("video", msg("video", {"link": "https://example.com/a.mp4", "caption": "clip"})),
    ("voice note", msg("audio", {"id": "UPLOADED", "voice": True})),
    ("document", msg("document", {"link": "https://example.com/a.pdf", "filename": "a.pdf"})),
    ("sticker", msg("sticker", {"id": "UPLOADED"})),
    ("template", msg("template", TEMPLATE)),
    ("buttons", msg("interactive", buttons(3))),
    ("list", msg("interactive", rows(10))),
    ("reaction", msg("reaction", {"message_id": "wamid.X", "emoji": "\U0001f44d"})),
    ("reaction removal", msg("reaction", {"message_id": "wamid.X", "emoji": ""})),
    ("location", msg("location", {"latitude": 51.5, "longitude": -0.14, "name": "Depot"})),
    ("contacts", msg("contacts", [{"name": {"formatted_name": "Ann"}}])),
    ("reply", msg("text", {"body": "re"}, context={"message_id": "wamid.Y"})),
    ("default type", {"messaging_product": "whatsapp", "to": CUSTOMER, "text": {"body": "x"}}),
]


@pytest.mark.parametrize("body", [c[1] for c in VALID], ids=[c[0] for c in VALID])
async def test_valid_sends_are_accepted(
    wa: tuple[httpx.AsyncClient, WaState], receiver: Receiver, body: dict[str, Any]
) -> None:
    http, state = wa
    state.config.statuses = ["sent"]
    kind = body.get("type", "text")
    content = body.get(kind)
    if isinstance(content, dict) and content.get("id") == "UPLOADED":
        body = {**body, kind: {**body[kind], "id": await upload(http, UPLOADED[kind])}}
    response = await http.post(SEND, json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["messaging_product"] == "whatsapp"
    assert answer["contacts"] == [{"input": CUSTOMER, "wa_id": CUSTOMER}]
    [message] = answer["messages"]
    assert message["id"].startswith("wamid.")
    assert ("message_status" in message) == (body.get("type") == "template")
    await state.drain()  # and it was not failed afterwards (media fetched, template known)
    assert [s["status"] for s in receiver.statuses_for(message["id"])] == ["sent"]


async def test_phone_formatting_is_normalized(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    body = {**msg("text", {"body": "x"}), "to": "+1 (650) 555-1234"}
    answer = (await http.post(SEND, json=body, headers=AUTH)).json()
    assert answer["contacts"] == [{"input": "+1 (650) 555-1234", "wa_id": "16505551234"}]


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


TEXT = msg("text", {"body": "hi"})
READ = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.Z"}
INVALID: list[tuple[str, Any, int, str]] = [
    (
        "no messaging_product",
        without(TEXT, "messaging_product"),
        100,
        "messaging_product is required",
    ),
    ("wrong messaging_product", {**TEXT, "messaging_product": "sms"}, 100, "must be one of"),
    ("no to", without(TEXT, "to"), 100, "The parameter to is required"),
    ("bad to", {**TEXT, "to": "not-a-number"}, 100, "Invalid parameter"),
    ("recipient_type", {**TEXT, "recipient_type": "crowd"}, 100, "recipient_type"),
    ("to is the business", {**TEXT, "to": "15550000001"}, 131021, "same"),
    ("unknown type", {**TEXT, "type": "poll"}, 100, "Param type must be one of"),
    ("type object missing", without(TEXT, "text"), 100, "The parameter text is required"),
    ("text too long", msg("text", {"body": "x" * 4097}), 100, "at most 4096"),
    ("text empty", msg("text", {"body": ""}), 100, "text['body'] is required"),
    ("preview_url", msg("text", {"body": "x", "preview_url": "yes"}), 100, "boolean"),
    ("unknown text key", msg("text", {"body": "x", "bdy": 1}), 100, 'Unexpected key "bdy"'),
    ("media id and link", msg("image", {"id": "1", "link": "https://e.x/a"}), 131009, "only one"),
    ("media neither", msg("image", {"caption": "c"}), 131008, "one of 'id' or 'link'"),
    ("caption too long", msg("image", {"id": "1", "caption": "c" * 1025}), 100, "at most 1024"),
    (
        "caption on audio",
        msg("audio", {"id": "1", "caption": "c"}),
        100,
        'Unexpected key "caption"',
    ),
    ("filename on image", msg("image", {"id": "1", "filename": "f"}), 100, "Unexpected key"),
    ("voice not bool", msg("audio", {"id": "1", "voice": "yes"}), 100, "boolean"),
    ("link not http", msg("image", {"link": "ftp://e.x/a"}), 131009, "http"),
    ("media id not numeric", msg("image", {"id": "abc"}), 100, "media ID"),
    ("4 buttons", msg("interactive", buttons(4)), 131009, "Buttons count"),
    ("button title 21", msg("interactive", buttons(1, "x" * 20)), 131009, "title length"),
    ("no buttons", msg("interactive", buttons(0)), 131009, "Buttons count"),
    ("11 rows", msg("interactive", rows(11)), 131009, "Total row count"),
    ("row title 25", msg("interactive", rows(1, "x" * 24)), 131009, "Row title"),
    ("interactive body missing", msg("interactive", without(buttons(1), "body")), 100, "body"),
    (
        "interactive type",
        msg("interactive", {**buttons(1), "type": "carousel"}),
        100,
        "must be one of",
    ),
    ("template no language", msg("template", without(TEMPLATE, "language")), 100, "language"),
    ("template no code", msg("template", {**TEMPLATE, "language": {}}), 100, "['code']"),
    (
        "template parameter type",
        msg(
            "template",
            {**TEMPLATE, "components": [{"type": "body", "parameters": [{"type": "emoji"}]}]},
        ),
        100,
        "must be one of",
    ),
    ("reaction no message_id", msg("reaction", {"emoji": "x"}), 100, "message_id"),
    ("reaction no emoji", msg("reaction", {"message_id": "wamid.X"}), 131008, "emoji"),
    (
        "reaction as reply",
        msg("reaction", {"message_id": "w", "emoji": "x"}, context={"message_id": "w"}),
        131009,
        "context",
    ),
    ("context without id", msg("text", {"body": "x"}, context={}), 100, "context['message_id']"),
    ("read without id", without(READ, "message_id"), 100, "message_id is required"),
    ("read bad status", {**READ, "status": "delivered"}, 100, "Param status must be one of"),
    ("typing type", {**READ, "typing_indicator": {"type": "audio"}}, 100, "typing_indicator"),
]


@pytest.mark.parametrize(
    ("body", "code", "fragment"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
async def test_invalid_sends_get_graph_errors(
    wa: tuple[httpx.AsyncClient, WaState], body: Any, code: int, fragment: str
) -> None:
    http, state = wa
    response = await http.post(SEND, json=body, headers=AUTH)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("OAuthException", code)
    assert error["message"].startswith(f"(#{code}) ")
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert fragment in error["message"] + error["error_data"]["details"]
    assert error["fbtrace_id"]
    assert state.messages == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not bearer"],
)
async def test_bad_token_is_401_code_190(
    wa: tuple[httpx.AsyncClient, WaState], headers: dict[str, str]
) -> None:
    http, _ = wa
    response = await http.post(SEND, json=TEXT, headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("OAuthException", 190)
    assert "access token" in error["message"]
    assert "invalid_token" in response.headers["www-authenticate"]


async def test_token_in_query_and_path_errors(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    assert (await http.post(f"{SEND}?access_token={TOKEN}", json=TEXT)).status_code == 200
    bad_phone = (await http.post("/v21.0/abc/messages", json=TEXT, headers=AUTH)).json()
    assert (bad_phone["error"]["code"], bad_phone["error"]["error_subcode"]) == (100, 33)
    bad_version = await http.post(f"/latest/{PHONE_ID}/messages", json=TEXT, headers=AUTH)
    assert "Unknown path components" in bad_version.json()["error"]["message"]


async def test_records_filter_and_clear(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    first = (await http.post(SEND, json=TEXT, headers=AUTH)).json()["messages"][0]["id"]
    other = {**TEXT, "to": "+15551230000"}
    await http.post(SEND, json=other, headers=AUTH)
    [record] = (await http.get("/_emulator/messages", params={"to": CUSTOMER})).json()
    assert record["id"] == first
    assert (record["to"], record["phone_number_id"], record["type"]) == (CUSTOMER, PHONE_ID, "text")
    assert record["body"] == TEXT
    assert record["received_at"]
    assert len((await http.get("/_emulator/messages")).json()) == 2
    assert len((await http.get("/_emulator/messages?to=%2B15551230000")).json()) == 1
    await http.delete("/_emulator/messages")
    assert (await http.get("/_emulator/messages")).json() == []


async def test_mark_as_read_and_typing(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    inbound = await http.post("/_emulator/inbound", json={"from": CUSTOMER, "text": "hi"})
    wamid = inbound.json()["message_id"]
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    typing = {**read, "typing_indicator": {"type": "text"}}
    for body in (read, typing):
        response = await http.post(SEND, json=body, headers=AUTH)
        assert response.json() == {"success": True}
    reads = (await http.get("/_emulator/reads", params={"to": CUSTOMER})).json()
    assert [(r["id"], r["type"]) for r in reads] == [(wamid, "read"), (wamid, "typing_indicator")]
    assert (await http.get("/_emulator/messages")).json() == []


FAULTS: list[tuple[str, dict[str, Any], list[int], int]] = [
    ("rate limit twice", {"code": 130429, "count": 2}, [400, 400, 200], 130429),
    ("http status override", {"code": 130429, "http_status": 429}, [429, 200], 130429),
    ("server error", {"code": 131000}, [500, 200], 131000),
    ("other recipient untouched", {"code": 131026, "to": "+15559999999"}, [200, 200], 0),
    ("type filter", {"code": 131051, "type": "image"}, [200, 200], 0),
    ("read calls only", {"code": 131000, "type": "read"}, [200], 0),
]


@pytest.mark.parametrize(
    ("rule", "statuses", "code"), [c[1:] for c in FAULTS], ids=[c[0] for c in FAULTS]
)
async def test_faults(
    wa: tuple[httpx.AsyncClient, WaState], rule: dict[str, Any], statuses: list[int], code: int
) -> None:
    http, _ = wa
    assert (await http.post("/_emulator/faults", json=rule)).status_code == 200
    seen = []
    for _ in statuses:
        response = await http.post(SEND, json=TEXT, headers=AUTH)
        seen.append(response.status_code)
        if response.status_code != 200:
            error = response.json()["error"]
            assert error["code"] == code
            assert error["message"].startswith(f"(#{code}) ")
            assert error["error_data"]["details"]
    assert seen == statuses


async def test_fault_controls_and_latency(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    assert (await http.post("/_emulator/faults", json={"count": 1})).status_code == 422
    await http.post("/_emulator/faults", json={"code": 4, "message": "(#4) Custom", "count": 5})
    await http.post("/_emulator/faults", json={"delay_ms": 1})
    faults = (await http.get("/_emulator/faults")).json()["faults"]
    assert [f["remaining"] for f in faults] == [5, None]
    response = await http.post(SEND, json=TEXT, headers=AUTH)
    assert response.json()["error"]["message"] == "(#4) Custom"
    await http.delete("/_emulator/faults")
    assert (await http.post(SEND, json=TEXT, headers=AUTH)).status_code == 200
    config = await http.post("/_emulator/config", json={"latency_ms": 1})
    assert config.json()["latency_ms"] == 1
    assert (await http.post(SEND, json=TEXT, headers=AUTH)).status_code == 200


async def test_status_webhooks_follow_a_send(
    wa: tuple[httpx.AsyncClient, WaState], receiver: Receiver
) -> None:
    http, state = wa
    body = {**TEXT, "biz_opaque_callback_data": "ticket:1"}
    wamid = (await http.post(SEND, json=body, headers=AUTH)).json()["messages"][0]["id"]
    await state.drain()
    statuses = receiver.statuses_for(wamid)
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    sent = statuses[0]
    assert (sent["recipient_id"], sent["biz_opaque_callback_data"]) == (CUSTOMER, "ticket:1")
    assert sent["timestamp"].isdigit()
    assert "expiration_timestamp" in sent["conversation"]
    assert sent["pricing"]["category"] == "service"
    assert "pricing" not in statuses[2]
    for signature, raw in receiver.bodies():
        assert verify(signature, raw)
    [record] = (await http.get("/_emulator/messages")).json()
    assert [s["webhook_status"] for s in record["statuses"]] == [200, 200, 200]


STATUS_PLANS: list[tuple[str, str, dict[str, Any], list[str] | None, list[str]]] = [
    ("configured subset", SEND, TEXT, ["sent", "delivered"], ["sent", "delivered"]),
    ("turned off", SEND, TEXT, [], []),
    (
        "reaction only sent",
        SEND,
        msg("reaction", {"message_id": "w", "emoji": "x"}),
        None,
        ["sent"],
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "configured", "expected"),
    [c[1:] for c in STATUS_PLANS],
    ids=[c[0] for c in STATUS_PLANS],
)
async def test_status_plans(
    wa: tuple[httpx.AsyncClient, WaState],
    receiver: Receiver,
    path: str,
    body: dict[str, Any],
    configured: list[str] | None,
    expected: list[str],
) -> None:
    http, state = wa
    if configured is not None:
        await http.post("/_emulator/config", json={"statuses": configured, "status_delay_ms": 0})
    wamid = (await http.post(path, json=body, headers=AUTH)).json()["messages"][0]["id"]
    await state.drain()
    assert [s["status"] for s in receiver.statuses_for(wamid)] == expected


async def test_v24_statuses_have_no_conversation(
    wa: tuple[httpx.AsyncClient, WaState], receiver: Receiver
) -> None:
    http, state = wa
    response = await http.post(f"/v24.0/{PHONE_ID}/messages", json=TEXT, headers=AUTH)
    await state.drain()
    sent = receiver.statuses_for(response.json()["messages"][0]["id"])[0]
    assert "conversation" not in sent
    assert sent["pricing"]["pricing_model"] == "PMP"


async def test_webhook_mode_fault_delivers_failed_status(
    wa: tuple[httpx.AsyncClient, WaState], receiver: Receiver
) -> None:
    http, state = wa
    await http.post("/_emulator/faults", json={"code": 131047, "mode": "webhook"})
    response = await http.post(SEND, json=TEXT, headers=AUTH)
    assert response.status_code == 200
    await state.drain()
    [failed] = receiver.statuses_for(response.json()["messages"][0]["id"])
    assert failed["status"] == "failed"
    assert failed["errors"][0]["code"] == 131047
    assert "24 hours" in failed["errors"][0]["error_data"]["details"]


async def test_unreachable_ingress_does_not_break_sends() -> None:
    http, state = await make_client(unused_url())
    state.config.status_delay_ms = 0
    state.config.webhook_retry_ms = [1, 1]  # each status is tried three times, then dropped
    try:
        assert (await http.post(SEND, json=TEXT, headers=AUTH)).status_code == 200
        await state.drain()
        assert [s["webhook_status"] for s in state.messages[0].statuses] == [None, None, None]
        assert [s["attempts"] for s in state.messages[0].statuses] == [3, 3, 3]
        inbound = await http.post("/_emulator/inbound", json={"from": CUSTOMER, "text": "x"})
        assert inbound.status_code == 502
        assert inbound.json()["webhook_status"] is None
    finally:
        await state.aclose()
        await http.aclose()


def inbound_message(raw: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    value = json.loads(raw)["entry"][0]["changes"][0]["value"]
    return value, value["messages"][0]


async def test_inbound_posts_a_signed_real_payload(
    wa: tuple[httpx.AsyncClient, WaState], receiver: Receiver
) -> None:
    http, _ = wa
    before = len(receiver.bodies())
    request = {"from": "+447700900999", "text": "Olá, see https://x.example/a", "name": "Maria"}
    response = await http.post("/_emulator/inbound", json=request)
    answer = response.json()
    assert answer["webhook_status"] == 200
    [(signature, raw)] = receiver.bodies()[before:]
    assert verify(signature, raw)
    assert b"https:\\/\\/x.example\\/a" in raw
    assert b"Ol\\u00e1" in raw
    payload = json.loads(raw)
    assert payload["object"] == "whatsapp_business_account"
    assert payload["entry"][0]["changes"][0]["field"] == "messages"
    value, message = inbound_message(raw)
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"]["phone_number_id"] == PHONE_ID
    assert value["contacts"] == [{"profile": {"name": "Maria"}, "wa_id": "447700900999"}]
    assert message["id"] == answer["message_id"]
    assert (message["from"], message["type"]) == ("447700900999", "text")
    assert message["text"] == {"body": "Olá, see https://x.example/a"}
    assert message["timestamp"].isdigit()


INBOUND: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("given id", {"message_id": "wamid.FIXED", "phone_number_id": "42"}, {"id": "wamid.FIXED"}),
    ("reply", {"text": "yes", "reply_to": "wamid.OURS"}, {"context": {"from": "15550000001", "id": "wamid.OURS"}}),
    ("location", {"type": "location", "latitude": 1.5, "longitude": 2.5}, {"location": {"latitude": 1.5, "longitude": 2.5}}),
    ("reaction", {"type": "reaction", "reply_to": "wamid.O", "text": "👍"}, {"reaction": {"message_id": "wamid.O", "emoji": "👍"}}),
    ("reaction removed", {"type": "reaction", "reply_to": "wamid.O"}, {"reaction": {"message_id": "wamid.O"}}),
    (
        "button reply",
        {"type": "interactive", "text": "Request refund", "reply_to": "wamid.B"},
        {"interactive": {"type": "button_reply", "button_reply": {"id": "request_refund", "title": "Request refund"}}},
    ),
    (
        "list reply",
        {"type": "interactive", "interactive_type": "list_reply", "text": "A", "reply_id": "r1"},
        {"interactive": {"type": "list_reply", "list_reply": {"id": "r1", "title": "A"}}},
    ),
    ("template button", {"type": "button", "text": "Stop"}, {"button": {"payload": "stop", "text": "Stop"}}),
    ("custom content", {"type": "text", "content": {"body": "raw"}}, {"text": {"body": "raw"}}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "expected"), [c[1:] for c in INBOUND], ids=[c[0] for c in INBOUND]
)
async def test_inbound_types(
    wa: tuple[httpx.AsyncClient, WaState],
    receiver: Receiver,
    extra: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    http, _ = wa
    response = await http.post("/_emulator/inbound", json={"from": CUSTOMER, **extra})
    assert response.status_code == 200, response.text
    _, message = inbound_message(receiver.bodies()[-1][1])
    assert message["id"] == response.json()["message_id"]
    for key, value in expected.items():
        assert message[key] == value


@pytest.mark.parametrize(
    ("kind", "mime", "extra_key"),
    [("image", "image/jpeg", "caption"), ("audio", "audio/ogg; codecs=opus", "voice"),
     ("document", "application/pdf", "filename"), ("sticker", "image/webp", "animated")],
)  # fmt: skip
async def test_inbound_media_can_be_downloaded(
    wa: tuple[httpx.AsyncClient, WaState], receiver: Receiver, kind: str, mime: str, extra_key: str
) -> None:
    http, _ = wa
    await http.post("/_emulator/inbound", json={"from": CUSTOMER, "type": kind, "text": "cap"})
    _, message = inbound_message(receiver.bodies()[-1][1])
    media = message[kind]
    assert (media["mime_type"], extra_key in media) == (mime, True)
    info = (await http.get(f"/v21.0/{media['id']}", headers=AUTH)).json()
    content = (await http.get(info["url"], headers=AUTH)).content
    assert info["sha256"] == hashlib.sha256(content).hexdigest()
    assert info["file_size"] == len(content)


async def test_inbound_rejects_nonsense(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    assert (await http.post("/_emulator/inbound", json={"text": "no sender"})).status_code == 422
    reaction = {"from": CUSTOMER, "type": "reaction", "text": "x"}
    assert (await http.post("/_emulator/inbound", json=reaction)).status_code == 422


async def test_arbitrary_webhook_signed_or_not(
    wa: tuple[httpx.AsyncClient, WaState], receiver: Receiver
) -> None:
    http, _ = wa
    payload = {"object": "whatsapp_business_account", "entry": []}
    assert (await http.post("/_emulator/webhook", json=payload)).json() == {"webhook_status": 200}
    signature, raw = receiver.bodies()[-1]
    assert verify(signature, raw)
    assert json.loads(raw) == payload
    await http.post("/_emulator/webhook?sign=false", json=payload)
    assert receiver.bodies()[-1][0] is None


async def test_ingress_status_is_passed_back(receiver: Receiver) -> None:
    http, state = await make_client(f"{receiver.url}/broken")
    try:
        response = await http.post("/_emulator/inbound", json={"from": CUSTOMER, "text": "x"})
        assert response.json()["webhook_status"] == 503
    finally:
        await state.aclose()
        await http.aclose()


async def test_media_upload_retrieve_download_delete(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    content = b"\x89PNG\r\n--data\r\n"
    files = {"file": ("a.png", content, "image/png")}
    data = {"messaging_product": "whatsapp"}
    upload = await http.post(f"/v21.0/{PHONE_ID}/media", data=data, files=files, headers=AUTH)
    media_id = upload.json()["id"]
    info = (await http.get(f"/v21.0/{media_id}", headers=AUTH)).json()
    assert info["messaging_product"] == "whatsapp"
    assert (info["mime_type"], info["file_size"], info["id"]) == (
        "image/png",
        len(content),
        media_id,
    )
    assert info["sha256"] == hashlib.sha256(content).hexdigest()
    assert (await http.get(info["url"], headers=AUTH)).content == content
    assert (await http.get(info["url"])).status_code == 401
    assert (await http.get(info["url"].replace("hash=", "hash=x"), headers=AUTH)).status_code == 404
    image = msg("image", {"id": media_id})
    assert (await http.post(SEND, json=image, headers=AUTH)).status_code == 200
    assert (await http.delete(f"/v21.0/{media_id}", headers=AUTH)).json() == {"success": True}
    gone = (await http.get(f"/v21.0/{media_id}", headers=AUTH)).json()["error"]
    assert (gone["type"], gone["code"], gone["error_subcode"]) == ("GraphMethodException", 100, 33)


async def test_voice_note_must_be_ogg(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, state = wa
    data = {"messaging_product": "whatsapp"}
    ids = {}
    for name, mime in (("n.ogg", "audio/ogg; codecs=opus"), ("s.mp3", "audio/mpeg")):
        files = {"file": (name, b"audio", mime)}
        upload = await http.post(f"/v21.0/{PHONE_ID}/media", data=data, files=files, headers=AUTH)
        ids[name] = upload.json()["id"]
    voice = await http.post(
        SEND, json=msg("audio", {"id": ids["n.ogg"], "voice": True}), headers=AUTH
    )
    assert voice.status_code == 200
    assert state.messages[-1].body["audio"] == {"id": ids["n.ogg"], "voice": True}
    mp3 = msg("audio", {"id": ids["s.mp3"]})
    assert (await http.post(SEND, json=mp3, headers=AUTH)).status_code == 200  # an audio file
    mp3_voice = msg("audio", {"id": ids["s.mp3"], "voice": True})
    refused = await http.post(SEND, json=mp3_voice, headers=AUTH)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, 131053)
    assert "audio/ogg" in refused.json()["error"]["error_data"]["details"]


UPLOAD_ERRORS: list[tuple[str, dict[str, str], Any, int]] = [
    ("no messaging_product", {}, {"file": ("a.png", b"x", "image/png")}, 100),
    ("no file", {"messaging_product": "whatsapp"}, {"other": ("a", b"x", "text/plain")}, 100),
    ("unsupported type", {"messaging_product": "whatsapp"}, {"file": ("a.gif", b"x", "image/gif")}, 131053),
    ("too big", {"messaging_product": "whatsapp"}, {"file": ("a.webp", b"x" * 600_000, "image/webp")}, 131053),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "files", "code"), [c[1:] for c in UPLOAD_ERRORS], ids=[c[0] for c in UPLOAD_ERRORS]
)
async def test_media_upload_errors(
    wa: tuple[httpx.AsyncClient, WaState], data: dict[str, str], files: Any, code: int
) -> None:
    http, _ = wa
    response = await http.post(f"/v21.0/{PHONE_ID}/media", data=data, files=files, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


async def test_health_and_auth_on_media(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    assert (await http.get("/health")).json() == {"status": "ok"}
    assert (await http.get("/v21.0/123")).json()["error"]["code"] == 190


# --- Enforced limits: throughput (130429), pair rate (131056), 24-hour window (131047) ---


def to(customer: str, text: str = "hi") -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": customer, "type": "text", "text": {"body": text}}


async def codes(http: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[int | None]:
    """Send each body; the Graph error code of each answer (None for a success)."""
    found: list[int | None] = []
    for body in bodies:
        response = await http.post(SEND, json=body, headers=AUTH)
        found.append(None if response.status_code == 200 else response.json()["error"]["code"])
    return found


async def test_throughput_over_the_limit_is_130429(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    await http.post("/_emulator/config", json={"throughput_mps": 3, "statuses": []})
    # Three different customers: the pair limit plays no part. The bucket refills 3/s, so
    # at most one more token can come back while the calls run; six calls exceed it.
    seen = await codes(http, [to(f"4477009001{i:02d}") for i in range(6)])
    assert seen[:3] == [None, None, None]
    assert 130429 in seen[3:]
    response = await http.post(SEND, json=to("447700900199"), headers=AUTH)
    if response.status_code != 200:
        error = response.json()["error"]
        assert (response.status_code, error["code"]) == (400, 130429)
        assert error["message"] == "(#130429) Rate limit hit"
        assert error["error_data"]["details"] == "Cloud API message throughput has been reached."
    stats = (await http.get("/_emulator/limits")).json()
    assert stats["refused"]["130429"] >= 1
    await http.delete("/_emulator/limits")
    assert await codes(http, [to("447700900150")]) == [None]  # buckets full again
    await http.post("/_emulator/config", json={"throughput_mps": 0})  # 0 = off
    assert (await http.get("/_emulator/config")).json()["throughput_mps"] is None
    assert set(await codes(http, [to(f"4477009002{i:02d}") for i in range(10)])) == {None}


async def test_throughput_counts_per_business_number(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    await http.post("/_emulator/config", json={"throughput_mps": 1, "statuses": []})
    assert await codes(http, [to("447700900101")]) == [None]
    other = await http.post(
        "/v21.0/100000000000002/messages", json=to("447700900102"), headers=AUTH
    )
    assert other.status_code == 200
    assert await codes(http, [to("447700900103")]) == [130429]


async def test_the_default_throughput_is_whatsapps_80_per_second(
    wa: tuple[httpx.AsyncClient, WaState],
) -> None:
    http, state = wa
    assert (await http.get("/_emulator/config")).json()["throughput_mps"] == 80
    state.config.statuses = []
    # 120 calls cannot all fit in one 80-token burst plus what refills while they run,
    # unless they take over half a second; count what happened instead of timing it.
    started = time.monotonic()
    seen = await codes(http, [to(f"4477009{i:05d}") for i in range(120)])
    elapsed = time.monotonic() - started
    assert seen[:80] == [None] * 80
    assert seen.count(None) <= 80 + int(elapsed * 80) + 1
    off = WaEmulatorSettings(wa_emulator_throughput_mps=0)
    assert create_app(off).state.emulator.config.throughput_mps is None


async def test_pair_rate_limit_is_131056(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    await http.post("/_emulator/config", json={"pair_burst": 2, "statuses": []})
    seen = await codes(http, [to(CUSTOMER, str(i)) for i in range(3)])
    assert seen == [None, None, 131056]  # 1 per 6 s after a burst of 2
    assert await codes(http, [to("447700900124")]) == [None]  # other customers unaffected
    response = await http.post(SEND, json=to(CUSTOMER), headers=AUTH)
    error = response.json()["error"]
    assert (response.status_code, error["message"]) == (
        400,
        "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    )
    assert "same recipient" in error["error_data"]["details"]
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN"}
    assert (await http.post(SEND, json=read, headers=AUTH)).status_code == 200  # not a message
    await http.post("/_emulator/config", json={"pair_limit": False})
    assert await codes(http, [to(CUSTOMER)]) == [None]


async def test_pair_default_allows_a_burst_of_45(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    await http.post("/_emulator/config", json={"statuses": [], "throughput_mps": 0})
    seen = await codes(http, [to(CUSTOMER, str(i)) for i in range(46)])
    assert seen[:45] == [None] * 45
    assert seen[45] == 131056


async def test_window_closed_is_131047_synchronously(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    await http.post(
        "/_emulator/config", json={"enforce_window": True, "window_mode": "sync", "statuses": []}
    )
    assert await codes(http, [to(CUSTOMER)]) == [131047]  # never wrote
    template = msg("template", TEMPLATE)
    assert await codes(http, [template]) == [None]  # templates go out
    stale = int(time.time()) - 25 * 3600
    await http.post("/_emulator/inbound", json={"from": CUSTOMER, "text": "x", "timestamp": stale})
    response = await http.post(SEND, json=to(CUSTOMER), headers=AUTH)
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (400, 131047)
    assert "24 hours" in error["error_data"]["details"]
    await http.post("/_emulator/inbound", json={"from": CUSTOMER, "text": "hello again"})
    assert await codes(http, [to(CUSTOMER)]) == [None]  # window open again
    assert (await http.get("/_emulator/limits")).json()["refused"]["131047"] == 2


async def test_window_closed_arrives_as_a_failed_status_webhook(
    wa: tuple[httpx.AsyncClient, WaState], receiver: Receiver
) -> None:
    http, state = wa
    config = await http.post("/_emulator/config", json={"enforce_window": True})
    assert config.json()["window_mode"] == "webhook"  # the default: 200 + wamid, then failed
    response = await http.post(SEND, json=to(CUSTOMER), headers=AUTH)
    assert response.status_code == 200
    await state.drain()
    [failed] = receiver.statuses_for(response.json()["messages"][0]["id"])
    assert failed["status"] == "failed"
    [error] = failed["errors"]
    assert (error["code"], error["title"]) == (131047, "Re-engagement message")
    assert "24 hours" in error["error_data"]["details"]


async def test_a_customer_message_in_a_raw_webhook_opens_the_window(
    wa: tuple[httpx.AsyncClient, WaState],
) -> None:
    http, _ = wa
    await http.post(
        "/_emulator/config", json={"enforce_window": True, "window_mode": "sync", "statuses": []}
    )
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000001", "phone_number_id": PHONE_ID},
        "messages": [
            {"from": CUSTOMER, "id": "wamid.R", "timestamp": str(int(time.time())), "type": "text",
             "text": {"body": "hi"}}
        ],
    }  # fmt: skip
    payload = {"object": "whatsapp_business_account",
               "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]}  # fmt: skip
    await http.post("/_emulator/webhook", json=payload)
    assert await codes(http, [to(CUSTOMER)]) == [None]
    assert await codes(http, [to("447700900124")]) == [131047]


async def test_window_is_off_by_default(wa: tuple[httpx.AsyncClient, WaState]) -> None:
    http, _ = wa
    assert (await http.get("/_emulator/config")).json()["enforce_window"] is False
    assert await codes(http, [to("447700900177")]) == [None]
    on = WaEmulatorSettings(wa_emulator_enforce_window=True, wa_emulator_pair_limit=False)
    config = create_app(on).state.emulator.config
    assert (config.enforce_window, config.pair_limit) == (True, False)


async def test_a_business_scoped_recipient(
    wa: tuple[httpx.AsyncClient, WaState], receiver: Receiver
) -> None:
    # A user known by username: `recipient` carries the business-scoped user id; statuses
    # name them by `recipient_user_id`, with no phone number.
    http, state = wa
    user = "US.13491208655302741918"
    body = {**without(TEXT, "to"), "recipient": user}
    answer = (await http.post(SEND, json=body, headers=AUTH)).json()
    assert answer["contacts"] == [{"input": user, "user_id": user}]
    await state.drain()
    sent = receiver.statuses_for(answer["messages"][0]["id"])[0]
    assert sent["recipient_user_id"] == user
    assert "recipient_id" not in sent
    bad = await http.post(SEND, json={**without(TEXT, "to"), "recipient": "nobody"}, headers=AUTH)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == 100
