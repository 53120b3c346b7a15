"""GenerateContentResponse bodies, whole or as `alt=sse` stream chunks, with usage metadata."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

from baton_devtools.gemini.validation import field

STREAM_CHUNK_CHARS = 24
# The four harm categories the API rates; a blocked answer or prompt marks the one that
# blocked it (here always harassment, the emulator has no real classifier).
HARM_CATEGORIES = (
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
BLOCKING_CATEGORY = "HARM_CATEGORY_HARASSMENT"
# Finish reasons whose candidate still has a content (without parts when nothing was said);
# the others (MALFORMED_FUNCTION_CALL, SAFETY, RECITATION, OTHER) have no `content` at all.
FINISH_WITH_CONTENT = ("STOP", "MAX_TOKENS")


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


def _usage(prompt_tokens: int, output_tokens: int | None) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": prompt_tokens}
    if output_tokens is not None:  # a blocked prompt has no candidates to count
        usage["candidatesTokenCount"] = output_tokens
    usage["totalTokenCount"] = prompt_tokens + (output_tokens or 0)
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    return usage


def safety_ratings() -> list[dict[str, Any]]:
    """The ratings of a blocked answer or prompt: every category, one of them `blocked`."""
    ratings: list[dict[str, Any]] = []
    for category in HARM_CATEGORIES:
        if category == BLOCKING_CATEGORY:
            ratings.append({"category": category, "probability": "HIGH", "blocked": True})
        else:
            ratings.append({"category": category, "probability": "NEGLIGIBLE"})
    return ratings


def _response(
    parts: list[dict[str, Any]],
    usage: dict[str, Any],
    model: str,
    response_id: str,
    *,
    finished: bool,
    finish_reason: str = "STOP",
) -> dict[str, Any]:
    candidate: dict[str, Any] = {}
    if parts:
        candidate["content"] = {"parts": parts, "role": "model"}
    elif finish_reason in FINISH_WITH_CONTENT:
        candidate["content"] = {"role": "model"}  # nothing to say: a content without parts
    # else (MALFORMED_FUNCTION_CALL, SAFETY, RECITATION, OTHER): no content at all
    if finished:
        candidate["finishReason"] = finish_reason
    candidate["index"] = 0
    if finished and finish_reason == "SAFETY":
        candidate["safetyRatings"] = safety_ratings()
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


def blocked_prompt_response(body: dict[str, Any], model: str, reason: str) -> dict[str, Any]:
    """The answer to a blocked prompt: 200 with no `candidates`, only `promptFeedback`."""
    feedback: dict[str, Any] = {"blockReason": reason}
    if reason == "SAFETY":
        feedback["safetyRatings"] = safety_ratings()
    return {
        "promptFeedback": feedback,
        "usageMetadata": _usage(count_tokens(body), None),
        "modelVersion": model,
        "responseId": new_response_id(),
    }


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
