"""The Gemini API emulator against what the real service does, called over real HTTP and
through the real langchain-google-genai client. Tests marked `# INFIDELITY` were written
against a place where the emulator differed, with the source quoted; the emulator now
matches them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_google_genai import ChatGoogleGenerativeAI

from baton_devtools.gemini.app import create_app as create_gemini
from baton_devtools.gemini.settings import GeminiEmulatorSettings
from baton_devtools.serving import serving

pytestmark = pytest.mark.integration

MODEL = "gemini-2.5-flash"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
KEY = {"x-goog-api-key": "review-key"}


@pytest.fixture
async def gemini() -> AsyncIterator[httpx.AsyncClient]:
    app = create_gemini(GeminiEmulatorSettings())
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield http


# --------------------------------------------------------------------------------------------
# Gemini emulator: infidelities the review found, now fixed (each test keeps its source; the
# emulator line numbers quoted are those before the fix)
# --------------------------------------------------------------------------------------------

HUMAN_TOOL = {
    "functionDeclarations": [
        {
            "name": "request_intervention",
            "description": "Hand over to a person.",
            "parameters": {
                "type": "OBJECT",
                "properties": {"reason": {"type": "STRING"}},
                "required": ["reason"],
            },
        }
    ]
}
CALL = {"functionCall": {"name": "request_intervention", "args": {"reason": "x"}}}
RESULT = {"functionResponse": {"name": "request_intervention", "response": {"result": "ok"}}}
BAD_TURNS: list[tuple[str, list[dict[str, Any]], str]] = [
    (
        "history starts with a function call",
        [{"role": "model", "parts": [CALL]}, {"role": "user", "parts": [RESULT]}],
        "function call turn comes immediately after a user turn or after a function response",
    ),
    (
        "two calls, one response",
        [
            {"role": "user", "parts": [{"text": "a human please"}]},
            {"role": "model", "parts": [CALL, CALL]},
            {"role": "user", "parts": [RESULT]},
        ],
        "number of function response parts is equal to the number of function call parts",
    ),
]


@pytest.mark.parametrize(
    ("contents", "fragment"), [c[1:] for c in BAD_TURNS], ids=[c[0] for c in BAD_TURNS]
)
async def test_function_turn_order_is_validated(
    gemini: httpx.AsyncClient, contents: list[dict[str, Any]], fragment: str
) -> None:
    # INFIDELITY. The Gemini API refuses histories whose function-call turns are out of order
    # with 400 INVALID_ARGUMENT: "Please ensure that function call turn comes immediately
    # after a user turn or after a function response turn." (google-gemini/gemini-cli#11814:
    # "when the sent conversation history starts with a function call"; google/adk-python
    # #1581) and "Please ensure that the number of function response parts is equal to the
    # number of function call parts of the function call turn." (gemini-cli#2321, #17208).
    # validation.py:60-81 checks each content alone, so the emulator answers 200 ("Done.")
    # and a history-trimming bug in the agent (`Nodes.history`) would pass every test.
    body = {"contents": contents, "tools": [HUMAN_TOOL]}
    answer = await gemini.post(GENERATE, json=body, headers=KEY)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert fragment in error["message"]


async def test_unknown_model_is_404_not_found(gemini: httpx.AsyncClient) -> None:
    # INFIDELITY. The API answers a model it does not serve with 404 NOT_FOUND "models/X is
    # not found for API version v1beta, or is not supported for generateContent. Call
    # ListModels ..." (the emulator has that very message, routes.py:31-36, but only for a
    # bad API version or method). Any model name is served, so a mistyped GEMINI_MODEL
    # works in every offline run and fails every turn in production.
    hello = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    answer = await gemini.post(
        "/v1beta/models/gemini-2.5-flsh:generateContent", json=hello, headers=KEY
    )
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["status"] == "NOT_FOUND"


BLOCKED_SHAPES: list[tuple[str, str, str]] = [
    # pydantic/pydantic-ai#631: `input_value={'finishReason': 'MALFORMED_FUNCTION_CALL'}`
    # ("candidates.0.content Field required"); pydantic-ai#3095 shows the candidate as
    # `Candidate(finish_reason=MALFORMED_FUNCTION_CALL, index=0)`: no content at all.
    # The emulator sends `"content": {"role": "model"}` (responses.py:50-52).
    ("MALFORMED_FUNCTION_CALL", "content", "absent"),
    # xtekky/gpt4free#2341: a blocked candidate is `{'finishReason': 'SAFETY', 'index': 0,
    # 'safetyRatings': [...]}`; the emulator's has no `safetyRatings` (responses.py:48-56).
    ("SAFETY", "safetyRatings", "present"),
]


@pytest.mark.parametrize(
    ("finish", "key", "expected"), BLOCKED_SHAPES, ids=[c[0] for c in BLOCKED_SHAPES]
)
async def test_blocked_candidate_shapes(
    gemini: httpx.AsyncClient, finish: str, key: str, expected: str
) -> None:
    # INFIDELITY (shape). See the sources on BLOCKED_SHAPES.
    await gemini.post("/_emulator/faults", json={"finish_reason": finish})
    hello = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    [candidate] = (await gemini.post(GENERATE, json=hello, headers=KEY)).json()["candidates"]
    assert candidate["finishReason"] == finish
    assert (key in candidate) == (expected == "present"), candidate


async def test_a_blocked_prompt_can_be_emulated(gemini: httpx.AsyncClient) -> None:
    # INFIDELITY (missing behaviour). When the prompt itself is blocked the API answers 200
    # with no `candidates` and `promptFeedback.blockReason` (googleapis/python-genai#774:
    # "the candidates attribute of the response being empty ... prompt_feedback ...
    # block_reason=OTHER"; deprecated-generative-ai-python#126: "block_reason: SAFETY").
    # langchain-google-genai turns it into an empty AIMessage (chat_models.py:2195 "Gemini
    # produced an empty response"). The emulator's faults (state.py:19-62) cannot produce
    # it: every answer has exactly one candidate. (The fault field name is a suggestion.)
    fault = await gemini.post("/_emulator/faults", json={"prompt_block_reason": "SAFETY"})
    assert fault.status_code == 200, fault.text
    hello = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    answer = (await gemini.post(GENERATE, json=hello, headers=KEY)).json()
    assert "candidates" not in answer
    assert answer["promptFeedback"]["blockReason"] == "SAFETY"


# --------------------------------------------------------------------------------------------
# Gemini emulator: the real client on the answers the agent must survive (these pass)
# --------------------------------------------------------------------------------------------


async def test_malformed_function_call_reaches_the_agent_as_an_empty_answer(
    gemini: httpx.AsyncClient,
) -> None:
    # The agent treats an answer with neither text nor tool calls as empty and retries it
    # (graph/nodes.py `EmptyAnswerError`); a MALFORMED_FUNCTION_CALL must arrive that way,
    # not as an exception or a half tool call, and the next call answers normally.
    await gemini.post("/_emulator/faults", json={"finish_reason": "MALFORMED_FUNCTION_CALL"})
    model = ChatGoogleGenerativeAI(
        model=MODEL, google_api_key="review-key", base_url=str(gemini.base_url), max_retries=1
    )
    first = await model.ainvoke([HumanMessage("hello")])
    assert isinstance(first, AIMessage)
    assert first.text == ""
    assert first.tool_calls == []
    assert first.response_metadata.get("finish_reason") == "MALFORMED_FUNCTION_CALL"
    second = await model.ainvoke([HumanMessage("hello")])
    assert second.text == "You said: hello"


@pytest.mark.parametrize(
    ("status", "name"), [(429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (503, "UNAVAILABLE")]
)
async def test_error_bodies_are_google_rpc_status(
    gemini: httpx.AsyncClient, status: int, name: str
) -> None:
    # Google API errors are `{"error": {"code", "message", "status", "details"?}}`; a quota
    # error carries `google.rpc.RetryInfo`. The fault is used once, then answers resume.
    await gemini.post("/_emulator/faults", json={"status": status})
    hello = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    answer = await gemini.post(GENERATE, json=hello, headers=KEY)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (status, name)
    types = [d["@type"] for d in error.get("details", [])]
    assert ("type.googleapis.com/google.rpc.RetryInfo" in types) == (status == 429)
    again = await gemini.post(GENERATE, json=hello, headers=KEY)
    assert again.status_code == 200
