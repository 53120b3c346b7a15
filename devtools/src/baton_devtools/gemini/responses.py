"""GenerateContentResponse bodies, whole or as `alt=sse` stream chunks, with usage metadata."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

from baton_devtools.gemini.validation import field

STREAM_CHUNK_CHARS = 24


def count_tokens(body: dict[str, Any]) -> int:
    """A rough, deterministic token count of the request's text (about 4 characters each)."""
    contents = list(body.get("contents") or [])
    system = field(body, "systemInstruction")
    if isinstance(system, dict):
        contents.append(system)
    chars = sum(len(json.dumps(part)) for content in contents for part in content["parts"])
    return max(1, chars // 4)


def _parts_tokens(parts: list[dict[str, Any]]) -> int:
    return max(1, sum(len(json.dumps(part)) for part in parts) // 4)


def _usage(prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": prompt_tokens + output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }


def _response(
    parts: list[dict[str, Any]],
    usage: dict[str, Any],
    model: str,
    response_id: str,
    *,
    finished: bool,
    finish_reason: str = "STOP",
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": 0}
    if parts:
        candidate["content"] = {"parts": parts, "role": "model"}
    elif finish_reason in ("STOP", "MAX_TOKENS", "MALFORMED_FUNCTION_CALL"):
        candidate["content"] = {"role": "model"}  # nothing to say: a content without parts
    # else (SAFETY, RECITATION, OTHER): a blocked answer carries no content at all
    if finished:
        candidate["finishReason"] = finish_reason
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id,
    }


def new_response_id() -> str:
    """A response id shaped like Google's."""
    return secrets.token_urlsafe(16)


def build_response(
    parts: list[dict[str, Any]], body: dict[str, Any], model: str, finish_reason: str = "STOP"
) -> dict[str, Any]:
    """The `generateContent` answer carrying `parts`."""
    usage = _usage(count_tokens(body), _parts_tokens(parts))
    return _response(
        parts, usage, model, new_response_id(), finished=True, finish_reason=finish_reason
    )


def stream_chunks(
    parts: list[dict[str, Any]], body: dict[str, Any], model: str, finish_reason: str = "STOP"
) -> Iterator[dict[str, Any]]:
    """The `streamGenerateContent` answer: text split into pieces, usage cumulative."""
    prompt_tokens = count_tokens(body)
    response_id = new_response_id()
    pieces = [piece for part in parts for piece in _split(part)]
    if not pieces:  # nothing to say (or blocked): one chunk with the finish reason
        usage = _usage(prompt_tokens, 0)
        yield _response([], usage, model, response_id, finished=True, finish_reason=finish_reason)
        return
    sent: list[dict[str, Any]] = []
    for index, piece in enumerate(pieces):
        sent.append(piece)
        usage = _usage(prompt_tokens, _parts_tokens(sent))
        last = index == len(pieces) - 1
        yield _response(
            [piece], usage, model, response_id, finished=last, finish_reason=finish_reason
        )


def sse_event(chunk: dict[str, Any]) -> bytes:
    """One server-sent event as the API frames it."""
    return f"data: {json.dumps(chunk, separators=(',', ':'))}\r\n\r\n".encode()


def _split(part: dict[str, Any]) -> list[dict[str, Any]]:
    """Split a long text part at whitespace into pieces that join back to the same text."""
    text = part.get("text")
    if not isinstance(text, str) or len(text) <= STREAM_CHUNK_CHARS:
        return [part]
    pieces: list[str] = []
    current = ""
    for word in re.split(r"(?<=\s)", text):
        if current and len(current) + len(word) > STREAM_CHUNK_CHARS:
            pieces.append(current)
            current = ""
        current += word
    pieces.append(current)
    return [{"text": piece} for piece in pieces if piece]
