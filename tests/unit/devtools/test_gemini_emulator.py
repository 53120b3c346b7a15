"""Gemini API emulator: the real `ChatGoogleGenerativeAI` against it, plus its raw HTTP contract."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_google_genai import ChatGoogleGenerativeAI
from langchain_google_genai.chat_models import GoogleAPIError, GoogleRateLimitError

from baton_devtools.gemini.app import create_app
from baton_devtools.gemini.script import first_media_id
from baton_devtools.gemini.settings import DEFAULT_MODELS, GeminiEmulatorSettings
from baton_devtools.gemini.state import GeminiState
from baton_devtools.gemini.validation import CALL_TURN_ORDER, RESPONSE_COUNT
from baton_devtools.serving import ServerThread

MODEL = "gemini-2.5-flash"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
KEY = {"x-goog-api-key": "test-key"}
HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


def request_intervention(reason: str) -> str:
    """Hand the conversation to a human operator."""
    return reason


def respond_with_media(media_ids: list[str]) -> str:
    """Send catalogue media to the customer; the brochure is `catalog-42`."""
    return ",".join(media_ids)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, GeminiState]]:
    app = create_app(GeminiEmulatorSettings())
    with ServerThread(app) as server:
        yield server.url, app.state.emulator


@pytest.fixture
def emulator(served: tuple[str, GeminiState]) -> Iterator[tuple[str, GeminiState]]:
    url, state = served
    state.clear_faults()
    state.requests.clear()
    yield url, state
    state.clear_faults()


def chat(url: str, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"max_retries": 1, **kwargs}
    llm = ChatGoogleGenerativeAI(model=MODEL, google_api_key="test-key", base_url=url, **options)
    return llm.bind_tools([request_intervention, respond_with_media])


TOOL_CALL = {"name": "request_intervention", "args": {"reason": "x"}, "id": "call-1"}
CONVERSATIONS: list[tuple[str, list[BaseMessage], str | None, dict[str, Any] | None]] = [
    ("plain text", [HumanMessage("hello there")], "You said: hello there", None),
    (
        "human",
        [HumanMessage("Can I talk to a HUMAN, please?")],
        None,
        {"name": "request_intervention", "args": {"reason": "customer asked for a human"}},
    ),
    ("word boundary", [HumanMessage("humanity rocks")], "You said: humanity rocks", None),
    (
        "sample",
        [HumanMessage("send me a sample")],
        None,
        {"name": "respond_with_media", "args": {"media_ids": ["catalog-42"]}},
    ),
    (
        "tool result",
        [
            HumanMessage("human"),
            AIMessage("", tool_calls=[TOOL_CALL]),
            ToolMessage("ok", tool_call_id="call-1"),
        ],
        "Done.",
        None,
    ),
    (
        "all text parts of the latest turn",
        [HumanMessage([{"type": "text", "text": "first"}, {"type": "text", "text": "second"}])],
        "You said: first\nsecond",
        None,
    ),
    (
        "latest turn only",
        [SystemMessage("be brief"), HumanMessage("a human"), AIMessage("ok"), HumanMessage("b")],
        "You said: b",
        None,
    ),
]


@pytest.mark.parametrize(
    ("messages", "text", "call"),
    [case[1:] for case in CONVERSATIONS],
    ids=[case[0] for case in CONVERSATIONS],
)
def test_real_client_gets_scripted_answers(
    emulator: tuple[str, GeminiState],
    messages: list[BaseMessage],
    text: str | None,
    call: dict[str, Any] | None,
) -> None:
    url, _ = emulator
    result = chat(url).invoke(messages)
    if call is None:
        assert result.content == text
        assert result.tool_calls == []
    else:
        assert [{"name": c["name"], "args": c["args"]} for c in result.tool_calls] == [call]
    assert result.usage_metadata["input_tokens"] > 0
    assert result.response_metadata["model_name"] == MODEL


def test_request_shape_the_client_sends(emulator: tuple[str, GeminiState]) -> None:
    url, state = emulator
    chat(url).invoke([SystemMessage("be brief"), HumanMessage("hi")])
    [request] = state.requests
    assert (request["api_version"], request["model"], request["method"]) == (
        "v1",
        MODEL,
        "generateContent",
    )
    body = request["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert body["contents"] == [{"parts": [{"text": "hi"}], "role": "user"}]
    names = [d["name"] for d in body["tools"][0]["functionDeclarations"]]
    assert names == ["request_intervention", "respond_with_media"]


def test_functions_not_offered_means_text(emulator: tuple[str, GeminiState]) -> None:
    url, _ = emulator
    llm = ChatGoogleGenerativeAI(model=MODEL, google_api_key="k", base_url=url, max_retries=1)
    result = llm.invoke([HumanMessage("a human and a sample")])
    assert result.content == "You said: a human and a sample"


def test_streaming_joins_to_the_same_text(emulator: tuple[str, GeminiState]) -> None:
    url, state = emulator
    text = "this is a rather long customer message that streams back in several pieces"
    chunks = list(chat(url).stream([HumanMessage(text)]))
    assert "".join(str(chunk.content) for chunk in chunks) == f"You said: {text}"
    assert len([chunk for chunk in chunks if chunk.content]) > 1
    assert state.requests[0]["method"] == "streamGenerateContent"


async def test_async_client(emulator: tuple[str, GeminiState]) -> None:
    url, _ = emulator
    result = await chat(url).ainvoke([HumanMessage("human")])
    assert result.tool_calls[0]["name"] == "request_intervention"


def test_429_surfaces_after_the_clients_retries(emulator: tuple[str, GeminiState]) -> None:
    url, state = emulator
    httpx.post(f"{url}/_emulator/faults", json={"status": 429, "count": 2}).raise_for_status()
    with pytest.raises(GoogleRateLimitError, match="RESOURCE_EXHAUSTED"):
        chat(url, max_retries=2).invoke([HumanMessage("hi")])
    assert len(state.requests) == 2


def test_one_429_is_absorbed_by_a_retry(emulator: tuple[str, GeminiState]) -> None:
    url, state = emulator
    httpx.post(f"{url}/_emulator/faults", json={"status": 429}).raise_for_status()
    result = chat(url, max_retries=2).invoke([HumanMessage("hi")])
    assert result.content == "You said: hi"
    assert len(state.requests) == 2


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_map_to_google_api_error(
    emulator: tuple[str, GeminiState], status: int
) -> None:
    url, _ = emulator
    httpx.post(f"{url}/_emulator/faults", json={"status": status}).raise_for_status()
    with pytest.raises(GoogleAPIError) as caught:
        chat(url).invoke([HumanMessage("hi")])
    assert caught.value.code == status


def test_delay_past_the_client_timeout_times_out(emulator: tuple[str, GeminiState]) -> None:
    url, _ = emulator
    httpx.post(f"{url}/_emulator/faults", json={"delay_ms": 3000, "count": 1}).raise_for_status()
    with pytest.raises(Exception, match="timed out"):
        chat(url, timeout=0.3).invoke([HumanMessage("hi")])


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, GeminiState]]:
    app = create_app(GeminiEmulatorSettings(gemini_emulator_api_key="test-key"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gemini") as http:
        yield http, app.state.emulator


def contents(*turns: dict[str, Any]) -> dict[str, Any]:
    return {"contents": list(turns)}


CALL = {"functionCall": {"name": "request_intervention", "args": {"reason": "x"}}}
RESULT = {"functionResponse": {"name": "request_intervention", "response": {"result": "ok"}}}


INVALID: list[tuple[str, Any, str]] = [
    ("no contents", {}, "contents is not specified"),
    ("empty contents", {"contents": []}, "contents is not specified"),
    ("empty parts", contents({"role": "user", "parts": []}), "parts must not be empty"),
    ("bad role", contents({"role": "system", "parts": [{"text": "x"}]}), "valid role"),
    ("empty part", contents({"role": "user", "parts": [{}]}), "oneof field 'data'"),
    ("unknown field", {**HELLO, "temprature": 1}, 'Unknown name "temprature"'),
    (
        "function response without name",
        contents({"role": "user", "parts": [{"functionResponse": {"response": {}}}]}),
        "Name cannot be empty",
    ),
    (
        "bad function name",
        {**HELLO, "tools": [{"functionDeclarations": [{"name": "1 bad"}]}]},
        "Invalid function name",
    ),
    ("temperature", {**HELLO, "generationConfig": {"temperature": 3}}, "temperature"),
    (
        "function call after a model turn",
        contents(
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {"role": "model", "parts": [CALL]},
            {"role": "user", "parts": [RESULT]},
        ),
        CALL_TURN_ORDER,
    ),
    (
        "function call answered by text",
        contents(
            {"role": "user", "parts": [{"text": "a human"}]},
            {"role": "model", "parts": [CALL]},
            {"role": "user", "parts": [{"text": "never mind"}]},
        ),
        RESPONSE_COUNT,
    ),
    (
        "one call, two responses",
        contents(
            {"role": "user", "parts": [{"text": "a human"}]},
            {"role": "model", "parts": [CALL]},
            {"role": "user", "parts": [RESULT, RESULT]},
        ),
        RESPONSE_COUNT,
    ),
]


@pytest.mark.parametrize(("body", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
async def test_invalid_requests_get_invalid_argument(
    client: tuple[httpx.AsyncClient, GeminiState], body: Any, message: str
) -> None:
    http, _ = client
    response = await http.post(GENERATE, json=body, headers=KEY)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert message in error["message"]


async def test_malformed_json(client: tuple[httpx.AsyncClient, GeminiState]) -> None:
    http, _ = client
    response = await http.post(GENERATE, content=b"{nope", headers=KEY)
    assert response.status_code == 400
    assert "Invalid JSON payload" in response.json()["error"]["message"]


AUTH: list[tuple[str, dict[str, str], str, int, str]] = [
    ("no key", {}, "", 403, "PERMISSION_DENIED"),
    ("wrong key", {"x-goog-api-key": "nope"}, "", 400, "INVALID_ARGUMENT"),
    ("key header", KEY, "", 200, ""),
    ("key query", {}, "?key=test-key", 200, ""),
]


@pytest.mark.parametrize(
    ("headers", "query", "status", "google_status"),
    [c[1:] for c in AUTH],
    ids=[c[0] for c in AUTH],
)
async def test_api_key(
    client: tuple[httpx.AsyncClient, GeminiState],
    headers: dict[str, str],
    query: str,
    status: int,
    google_status: str,
) -> None:
    http, _ = client
    response = await http.post(GENERATE + query, json=HELLO, headers=headers)
    assert response.status_code == status
    if google_status:
        assert response.json()["error"]["status"] == google_status
    if status == 400:
        reasons = [d.get("reason") for d in response.json()["error"]["details"]]
        assert "API_KEY_INVALID" in reasons


async def test_response_shape(client: tuple[httpx.AsyncClient, GeminiState]) -> None:
    http, state = client
    response = await http.post(GENERATE, json=HELLO, headers=KEY)
    body = response.json()
    candidate = body["candidates"][0]
    assert candidate["content"] == {"parts": [{"text": "You said: hello"}], "role": "model"}
    assert candidate["finishReason"] == "STOP"
    usage = body["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert body["modelVersion"] == MODEL
    assert body["responseId"]
    assert state.requests[0]["body"] == HELLO


async def test_sse_framing(client: tuple[httpx.AsyncClient, GeminiState]) -> None:
    http, _ = client
    path = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    response = await http.post(path, json=HELLO, headers=KEY)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e for e in response.text.split("\r\n\r\n") if e]
    assert events
    assert all(event.startswith("data: {") for event in events)


FAULTS = [(429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (503, "UNAVAILABLE")]


@pytest.mark.parametrize(("status", "google_status"), FAULTS)
async def test_fault_bodies_and_counts(
    client: tuple[httpx.AsyncClient, GeminiState], status: int, google_status: str
) -> None:
    http, _ = client
    await http.post("/_emulator/faults", json={"status": status, "count": 2})
    codes = [(await http.post(GENERATE, json=HELLO, headers=KEY)).status_code for _ in range(3)]
    assert codes == [status, status, 200]


async def test_fault_controls(client: tuple[httpx.AsyncClient, GeminiState]) -> None:
    http, _ = client
    assert (await http.post("/_emulator/faults", json={})).status_code == 422
    await http.post("/_emulator/faults", json={"status": 500, "count": 3})
    assert (await http.get("/_emulator/faults")).json()["faults"][0]["remaining"] == 3
    await http.delete("/_emulator/faults")
    assert (await http.post(GENERATE, json=HELLO, headers=KEY)).status_code == 200
    assert len((await http.get("/_emulator/requests")).json()) == 1
    await http.delete("/_emulator/requests")
    assert (await http.get("/_emulator/requests")).json() == []


async def test_unknown_method_and_health(client: tuple[httpx.AsyncClient, GeminiState]) -> None:
    http, _ = client
    response = await http.post(f"/v1beta/models/{MODEL}:embedText", json=HELLO, headers=KEY)
    assert response.json()["error"]["status"] == "NOT_FOUND"
    assert (await http.get("/health")).json() == {"status": "ok"}


MEDIA_DECLARATIONS: list[tuple[dict[str, Any], str]] = [
    ({"name": "m", "description": "no ids here"}, "sample-1"),
    ({"name": "m", "description": "Send media, e.g. `brochure-7`."}, "brochure-7"),
    ({"name": "m", "description": "Catalogue: id: photo_3 (a photo)"}, "photo_3"),
    (
        {
            "name": "m",
            "parameters": {
                "type": "OBJECT",
                "properties": {"media_ids": {"type": "ARRAY", "items": {"enum": ["menu", "map"]}}},
            },
        },
        "menu",
    ),
]


@pytest.mark.parametrize(("declaration", "expected"), MEDIA_DECLARATIONS)
def test_first_media_id(declaration: dict[str, Any], expected: str) -> None:
    assert first_media_id(declaration) == expected


ANSWER_FAULTS: list[tuple[str, dict[str, Any], str, list[dict[str, Any]]]] = [
    ("nothing to add", {"parts": []}, "", []),
    ("blocked", {"finish_reason": "SAFETY"}, "", []),
    (
        "a call with bad arguments",
        {"parts": [{"functionCall": {"name": "respond_with_media", "args": {"media_ids": 5}}}]},
        "",
        [{"name": "respond_with_media", "args": {"media_ids": 5}}],
    ),
    (
        "text and two calls",
        {
            "parts": [
                {"text": "One moment."},
                {"functionCall": {"name": "respond_with_media", "args": {"media_ids": ["a"]}}},
                {"functionCall": {"name": "request_intervention", "args": {"reason": "x"}}},
            ]
        },
        "One moment.",
        [
            {"name": "respond_with_media", "args": {"media_ids": ["a"]}},
            {"name": "request_intervention", "args": {"reason": "x"}},
        ],
    ),
]


@pytest.mark.parametrize(
    ("fault", "text", "calls"),
    [case[1:] for case in ANSWER_FAULTS],
    ids=[case[0] for case in ANSWER_FAULTS],
)
def test_answer_faults_reach_the_real_client(
    emulator: tuple[str, GeminiState],
    fault: dict[str, Any],
    text: str,
    calls: list[dict[str, Any]],
) -> None:
    url, _ = emulator
    httpx.post(f"{url}/_emulator/faults", json=fault).raise_for_status()
    result = chat(url).invoke([HumanMessage("hello")])
    assert result.text == text
    assert [{"name": c["name"], "args": c["args"]} for c in result.tool_calls] == calls
    # one call only: the next answer is the scripted one again
    assert chat(url).invoke([HumanMessage("hello")]).text == "You said: hello"


async def test_answer_fault_shapes(client: tuple[httpx.AsyncClient, GeminiState]) -> None:
    http, _ = client
    await http.post("/_emulator/faults", json={"parts": []})
    [empty] = (await http.post(GENERATE, json=HELLO, headers=KEY)).json()["candidates"]
    assert empty["content"] == {"role": "model"}
    assert empty["finishReason"] == "STOP"
    await http.post("/_emulator/faults", json={"finish_reason": "SAFETY"})
    [blocked] = (await http.post(GENERATE, json=HELLO, headers=KEY)).json()["candidates"]
    assert "content" not in blocked
    assert blocked["finishReason"] == "SAFETY"
    assert blocked["safetyRatings"]
    conflicting = {"status": 500, "parts": []}
    assert (await http.post("/_emulator/faults", json=conflicting)).status_code == 422


VALID_HISTORIES: list[tuple[str, dict[str, Any]]] = [
    (
        "two calls, two responses",
        contents(
            {"role": "user", "parts": [{"text": "a human"}]},
            {"role": "model", "parts": [{"text": "One moment."}, CALL, CALL]},
            {"role": "user", "parts": [RESULT, RESULT]},
        ),
    ),
    (
        "a call after a function response",
        contents(
            {"role": "user", "parts": [{"text": "a human"}]},
            {"role": "model", "parts": [CALL]},
            {"role": "user", "parts": [RESULT]},
            {"role": "model", "parts": [CALL]},
            {"role": "user", "parts": [RESULT]},
            {"role": "model", "parts": [{"text": "Done."}]},
            {"role": "user", "parts": [{"text": "thanks"}]},
        ),
    ),
    (
        "a call after a user turn without a role",
        contents(
            {"parts": [{"text": "a human"}]},
            {"role": "model", "parts": [CALL]},
            {"parts": [RESULT]},
        ),
    ),
]


@pytest.mark.parametrize(
    "body", [c[1] for c in VALID_HISTORIES], ids=[c[0] for c in VALID_HISTORIES]
)
async def test_ordered_function_turns_are_accepted(
    client: tuple[httpx.AsyncClient, GeminiState], body: dict[str, Any]
) -> None:
    http, _ = client
    response = await http.post(GENERATE, json=body, headers=KEY)
    assert response.status_code == 200, response.text


async def test_unknown_model_is_not_served(client: tuple[httpx.AsyncClient, GeminiState]) -> None:
    http, state = client
    for method in ("generateContent", "streamGenerateContent", "countTokens"):
        response = await http.post(
            f"/v1beta/models/gemini-2.5-flsh:{method}", json=HELLO, headers=KEY
        )
        assert response.status_code == 404
        error = response.json()["error"]
        assert (error["code"], error["status"]) == (404, "NOT_FOUND")
        assert error["message"].startswith(
            f"models/gemini-2.5-flsh is not found for API version v1beta, or is not supported "
            f"for {method}."
        )
    assert state.requests == []  # never reached the model


async def test_models_get(client: tuple[httpx.AsyncClient, GeminiState]) -> None:
    http, _ = client
    response = await http.get(f"/v1beta/models/{MODEL}", headers=KEY)
    assert response.status_code == 200
    model = response.json()
    assert model["name"] == f"models/{MODEL}"
    assert "generateContent" in model["supportedGenerationMethods"]
    assert model["inputTokenLimit"] > 0
    assert model["outputTokenLimit"] > 0
    assert {"version", "displayName", "description", "temperature", "topP", "topK"} <= set(model)
    missing = await http.get("/v1beta/models/gemini-2.5-flsh", headers=KEY)
    assert missing.status_code == 404
    assert missing.json()["error"]["status"] == "NOT_FOUND"
    assert "models/gemini-2.5-flsh is not found" in missing.json()["error"]["message"]
    assert (await http.get(f"/v1beta/models/{MODEL}")).status_code == 403


async def test_models_list(client: tuple[httpx.AsyncClient, GeminiState]) -> None:
    http, _ = client
    response = await http.get("/v1beta/models", headers=KEY)
    names = [model["name"] for model in response.json()["models"]]
    assert names == [f"models/{name}" for name in DEFAULT_MODELS]


def test_sdk_models_get(emulator: tuple[str, GeminiState]) -> None:
    """What the agent's start-up check calls: google-genai's `models.get`."""
    url, _ = emulator
    sdk = genai.Client(api_key="k", http_options=genai_types.HttpOptions(base_url=url))
    model = sdk.models.get(model=MODEL)
    assert model.name == f"models/{MODEL}"
    assert "generateContent" in (model.supported_actions or [])
    with pytest.raises(genai_errors.ClientError) as caught:
        sdk.models.get(model="gemini-2.5-flsh")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")


def test_served_models_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_EMULATOR_MODELS", "gemini-x, models/gemini-y,")
    assert GeminiEmulatorSettings().gemini_emulator_models == ("gemini-x", "gemini-y")
    monkeypatch.delenv("GEMINI_EMULATOR_MODELS")
    assert "gemini-2.5-flash" in GeminiEmulatorSettings().gemini_emulator_models


async def test_configured_models_only() -> None:
    app = create_app(GeminiEmulatorSettings(gemini_emulator_models=("gemini-x",)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gemini") as http:
        ok = await http.post("/v1beta/models/gemini-x:generateContent", json=HELLO, headers=KEY)
        assert ok.status_code == 200
        assert (await http.get("/v1beta/models/gemini-x", headers=KEY)).json()["name"] == (
            "models/gemini-x"
        )
        assert (await http.post(GENERATE, json=HELLO, headers=KEY)).status_code == 404


BLOCKED_CANDIDATES: list[tuple[str, bool, bool]] = [
    # finish reason, has content, has safetyRatings
    ("MALFORMED_FUNCTION_CALL", False, False),
    ("SAFETY", False, True),
    ("RECITATION", False, False),
    ("OTHER", False, False),
    ("MAX_TOKENS", True, False),
]


@pytest.mark.parametrize(("finish", "content", "ratings"), BLOCKED_CANDIDATES)
async def test_finish_reason_candidate_shapes(
    client: tuple[httpx.AsyncClient, GeminiState], finish: str, content: bool, ratings: bool
) -> None:
    http, _ = client
    await http.post("/_emulator/faults", json={"finish_reason": finish})
    [candidate] = (await http.post(GENERATE, json=HELLO, headers=KEY)).json()["candidates"]
    assert candidate["finishReason"] == finish
    assert ("content" in candidate) == content
    assert ("safetyRatings" in candidate) == ratings
    if ratings:
        assert [r for r in candidate["safetyRatings"] if r.get("blocked")]


async def test_blocked_prompt_shapes(client: tuple[httpx.AsyncClient, GeminiState]) -> None:
    http, _ = client
    await http.post("/_emulator/faults", json={"prompt_block_reason": "OTHER", "count": 2})
    answer = (await http.post(GENERATE, json=HELLO, headers=KEY)).json()
    assert "candidates" not in answer
    assert answer["promptFeedback"] == {"blockReason": "OTHER"}
    assert "candidatesTokenCount" not in answer["usageMetadata"]
    path = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    events = [
        e for e in (await http.post(path, json=HELLO, headers=KEY)).text.split("\r\n\r\n") if e
    ]
    assert len(events) == 1
    assert '"blockReason":"OTHER"' in events[0]
    assert (await http.post(GENERATE, json=HELLO, headers=KEY)).json()["candidates"]
    for conflicting in (
        {"prompt_block_reason": "SAFETY", "status": 500},
        {"prompt_block_reason": "SAFETY", "parts": []},
        {"prompt_block_reason": "SAFETY", "finish_reason": "STOP"},
        {"prompt_block_reason": "NOPE"},
    ):
        assert (await http.post("/_emulator/faults", json=conflicting)).status_code == 422


def test_blocked_prompt_reaches_the_real_client(emulator: tuple[str, GeminiState]) -> None:
    url, _ = emulator
    fault = {"prompt_block_reason": "SAFETY"}
    httpx.post(f"{url}/_emulator/faults", json=fault).raise_for_status()
    result = chat(url).invoke([HumanMessage("hello")])
    assert result.text == ""
    assert result.tool_calls == []
    assert str(result.response_metadata["prompt_feedback"]["block_reason"]).endswith("SAFETY")
    assert chat(url).invoke([HumanMessage("hello")]).text == "You said: hello"
