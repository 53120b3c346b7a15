"""`POST /{v1|v1beta}/models/{model}:generateContent` and `:streamGenerateContent`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from baton_devtools.gemini.deps import StateDep, check_api_key
from baton_devtools.gemini.errors import GoogleApiError, fault_error, invalid_argument
from baton_devtools.gemini.responses import build_response, count_tokens, sse_event, stream_chunks
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
        raise GoogleApiError(
            404,
            f"models/{model} is not found for API version {api_version}, or is not supported "
            f"for {method or 'this method'}. Call ListModels to see the list of available models "
            "and their supported methods.",
        )
    check_api_key(request, state)
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
    parts = scripted_parts(body)
    finish = "STOP"
    if fault is not None and fault.answers:
        parts = fault.parts if fault.parts is not None else []
        finish = fault.finish_reason or "STOP"
    answer: Response
    if method == "generateContent":
        answer = JSONResponse(build_response(parts, body, model, finish))
    else:
        chunks = list(stream_chunks(parts, body, model, finish))
        if request.query_params.get("alt") != "sse":
            answer = JSONResponse(chunks)
        else:
            events = [sse_event(chunk) for chunk in chunks]
            answer = StreamingResponse(iter(events), media_type="text/event-stream")
    await _apply_fault(fault)
    return answer


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
