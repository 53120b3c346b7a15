"""`POST /{v1|v1beta}/models/{model}:generateContent`, `:streamGenerateContent` and
`:countTokens`; `GET /{version}/models/{model}` (models.get) and `GET /{version}/models`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from baton_devtools.gemini.deps import StateDep, check_api_key
from baton_devtools.gemini.errors import GoogleApiError, fault_error, invalid_argument
from baton_devtools.gemini.models import model_not_found, model_resource
from baton_devtools.gemini.responses import (
    blocked_prompt_response,
    build_response,
    count_tokens,
    sse_event,
    stream_chunks,
)
from baton_devtools.gemini.script import scripted_parts
from baton_devtools.gemini.state import GeminiFault
from baton_devtools.gemini.validation import validate_request

API_VERSIONS = ("v1", "v1beta", "v1alpha")
METHODS = ("generateContent", "streamGenerateContent", "countTokens")
router = APIRouter(tags=["models"])


@router.post("/{api_version}/models/{model_method}", response_model=None)
async def model_call(
    api_version: str, model_method: str, request: Request, state: StateDep
) -> Response:
    """Answer a model call with the scripted reply, after auth, validation and faults."""
    model, _, method = model_method.partition(":")
    if api_version not in API_VERSIONS or method not in METHODS or not model:
        raise model_not_found(model, api_version, method or "this method")
    check_api_key(request, state)
    if model not in state.models:
        raise model_not_found(model, api_version, method)
    body = await _json_body(request)
    state.record(api_version, model, method, body)
    if method == "countTokens":
        inner = body.get("generateContentRequest", body) if isinstance(body, dict) else body
        return JSONResponse({"totalTokens": count_tokens(validate_request(inner))})
    validate_request(body)
    fault = state.take_fault()
    # The answer is made before a fault's delay is waited out, not after: the same answer at
    # the same moment for the client, and the emulator's own work (on the machine it shares
    # with the agent) is not bunched at the end of the delay.
    chunks = _answer(body, model, method, fault)
    answer: Response
    if method == "generateContent":
        answer = JSONResponse(chunks[0])
    elif request.query_params.get("alt") != "sse":
        answer = JSONResponse(chunks)
    else:
        events = [sse_event(chunk) for chunk in chunks]
        answer = StreamingResponse(iter(events), media_type="text/event-stream")
    await _apply_fault(fault)
    return answer


def _answer(
    body: dict[str, Any], model: str, method: str, fault: GeminiFault | None
) -> list[dict[str, Any]]:
    """The answer's bodies: one for `generateContent`, the stream's chunks otherwise."""
    if fault is not None and fault.prompt_block_reason is not None:
        # A blocked prompt: no candidates at all, streamed or not.
        return [blocked_prompt_response(body, model, fault.prompt_block_reason)]
    parts = scripted_parts(body)
    finish = "STOP"
    if fault is not None and fault.answers:
        parts = fault.parts if fault.parts is not None else []
        finish = fault.finish_reason or "STOP"
    if method == "generateContent":
        return [build_response(parts, body, model, finish)]
    return list(stream_chunks(parts, body, model, finish))


@router.get("/{api_version}/models")
async def list_models(api_version: str, request: Request, state: StateDep) -> dict[str, Any]:
    """`models.list`: every served model's resource (one page)."""
    if api_version not in API_VERSIONS:
        raise GoogleApiError(404)
    check_api_key(request, state)
    return {"models": [model_resource(model) for model in state.settings.gemini_emulator_models]}


@router.get("/{api_version}/models/{model}")
async def get_model(
    api_version: str, model: str, request: Request, state: StateDep
) -> dict[str, Any]:
    """`models.get`: the model's resource (name, version, token limits,
    supportedGenerationMethods, ...), or 404 NOT_FOUND for a model the emulator does not
    serve, as the API answers a mistyped name."""
    if api_version not in API_VERSIONS:
        raise model_not_found(model, api_version, "get")
    check_api_key(request, state)
    if model not in state.models:
        raise model_not_found(model, api_version, "get")
    return model_resource(model)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise invalid_argument(
            f"Invalid JSON payload received. Unexpected token.\n{raw[:40]!r}\n^"
        ) from exc


async def _apply_fault(fault: GeminiFault | None) -> None:
    if fault is None:
        return
    if fault.delay_ms:
        await asyncio.sleep(fault.delay_ms / 1000)
    if fault.status is not None:
        raise fault_error(fault.status, fault.message)
